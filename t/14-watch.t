use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "WATCHES": watch, EV::Etcd::Watch, on a private member that
# sends progress notifications every second and can be compacted freely.

my $srv = EtcdTest->start(extra_args => ['--experimental-watch-progress-notify-interval=1s']);
my $c   = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 10);
my $kv  = EtcdTest::Caller->new($c);
my $P   = EtcdTest::prefix();

# A watch whose callback records everything it gets.
sub watcher {
    my ($client, $key, $opts) = @_;
    my $w = { msgs => [], errs => [], calls => 0, bad_argc => 0 };
    my $cb = sub {
        $w->{calls}++;
        $w->{bad_argc}++ unless @_ == 2;
        my ($r, $e) = @_;
        push @{ $e ? $w->{errs} : $w->{msgs} }, $e || $r;
    };
    $w->{h} = $opts ? $client->watch($key, $opts, $cb) : $client->watch($key, $cb);
    return $w;
}
sub events { [ map { @{ $_->{events} } } @{ $_[0]{msgs} } ] }
sub created { scalar grep { $_->{created} } @{ $_[0]{msgs} } }
sub ev_str { join ' ', map { "$_->{type}:$_->{kv}{key}=$_->{kv}{value}" } @{ $_[0] } }
sub wait_events {
    my ($w, $n, $t) = @_;
    EtcdTest::run_until($t // 10, sub { @{ events($w) } >= $n || @{ $w->{errs} } });
}
sub put_ok { $kv->ok_call("put $_[0]", 'put', @_) }

# ---------------------------------------------------------------------------
# the created response first, then events in revision order, only in range

{
    my $w = watcher($c, "${P}a/", { prefix => 1 });
    isa_ok($w->{h}, 'EV::Etcd::Watch', 'watch returns a handle');
    # no delay at all between watch() and the writes: they must be seen
    # (pipelined requests may be applied in any order: the delete waits)
    my $acked = 0;
    $c->put("${P}a/$_", "v$_", sub { $c->delete("${P}a/3", sub {}) if ++$acked == 6 }) for 1 .. 5;
    $c->put("${P}b/outside", 'x', sub { $c->delete("${P}a/3", sub {}) if ++$acked == 6 });
    ok(wait_events($w, 6), 'six events arrive');
    my $first = $w->{msgs}[0] || {};
    is($first->{created}, 1, 'first callback is the created response');
    is_deeply($first->{events}, [], 'created response has no events');
    is_deeply([ sort keys %$first ], [ sort qw(header watch_id created canceled compact_revision events) ],
              'watch response keys');
    is($first->{canceled}, 0, 'canceled is 0');
    is($first->{compact_revision}, 0, 'compact_revision is 0');
    is(created($w), 1, 'exactly one created response');
    my $ev = events($w);
    is(scalar @$ev, 6, 'exactly six events: the outside key is not delivered');
    my @revs = map { $_->{kv}{mod_revision} } @$ev;
    is_deeply(\@revs, [ sort { $a <=> $b } @revs ], 'events in revision order');
    is_deeply([ sort map { $_->{kv}{key} } grep { $_->{type} eq 'PUT' } @$ev ],
              [ map { "${P}a/$_" } 1 .. 5 ], 'every put delivered');
    my ($del) = grep { $_->{type} eq 'DELETE' } @$ev;
    ok($del, 'a DELETE event');
    is($del && $del->{kv}{key}, "${P}a/3", 'DELETE event key');
    is($del && $del->{kv}{value}, '', 'DELETE event value is empty');
    is($del && $del->{kv}{version}, 0, 'DELETE event version is 0');
    ok($del && !exists $del->{prev_kv}, 'no prev_kv without the option');
    is_deeply([ sort keys %{ $ev->[0]{kv} } ], [ sort qw(key value create_revision mod_revision version lease) ],
              'event kv keys');
    my $last = $w->{msgs}[-1];
    ok($last->{header}{revision} >= $revs[-1], 'header revision is at least the event revision');
    is(scalar @{ $w->{errs} }, 0, 'a healthy watch reports no error');
    is($w->{bad_argc}, 0, 'every callback got two arguments');
    my $n = 0;
    $w->{h}->cancel(sub { $n++ });
}

# ---------------------------------------------------------------------------
# prev_kv, filters, range_end, start_revision

{
    my $r1 = put_ok("${P}pk", 'one');
    my $w = watcher($c, "${P}pk", { prev_kv => 1 });
    ok(EtcdTest::run_until(5, sub { created($w) }), 'prev_kv watch created');
    put_ok("${P}pk", 'two');
    $kv->ok_call('delete pk', 'delete', "${P}pk");
    ok(wait_events($w, 2), 'update and delete events');
    my $ev = events($w);
    is($ev->[0]{prev_kv}{value}, 'one', 'update carries prev_kv');
    is($ev->[1]{type}, 'DELETE', 'then the delete');
    is($ev->[1]{prev_kv}{value}, 'two', 'delete carries prev_kv');
    my $fresh = watcher($c, "${P}pk2", { prev_kv => 1 });
    ok(EtcdTest::run_until(5, sub { created($fresh) }), 'second prev_kv watch created');
    put_ok("${P}pk2", 'new');
    ok(wait_events($fresh, 1), 'creation event');
    ok(!exists events($fresh)->[0]{prev_kv}, 'no prev_kv for a new key');
    $_->{h}->cancel(sub {}) for $w, $fresh;

    my $noput = watcher($c, "${P}f/", { prefix => 1, filters => ['noput'] });
    my $nodel = watcher($c, "${P}f/", { prefix => 1, filters => ['NODELETE'] });
    put_ok("${P}f/x", '1');
    $kv->ok_call('delete f/x', 'delete', "${P}f/x");
    ok(wait_events($noput, 1) && wait_events($nodel, 1), 'filtered watches got events');
    EtcdTest::run_until(0.3, sub { 0 });
    is(ev_str(events($noput)), "DELETE:${P}f/x=", 'noput: only the delete');
    is(ev_str(events($nodel)), "PUT:${P}f/x=1", 'nodelete: only the put');
    $_->{h}->cancel(sub {}) for $noput, $nodel;

    my $range = watcher($c, "${P}r/b", { range_end => "${P}r/d", prefix => 1 });
    put_ok("${P}r/$_", $_) for qw(a b c d);
    ok(wait_events($range, 2), 'range watch events');
    EtcdTest::run_until(0.3, sub { 0 });
    is(ev_str(events($range)), "PUT:${P}r/b=b PUT:${P}r/c=c", 'range_end wins over prefix: [b, d)');
    $range->{h}->cancel(sub {});

    # history replay
    my $start = put_ok("${P}h/k", 'h1')->{header}{revision};
    put_ok("${P}h/k", "h$_") for 2 .. 4;
    my $hist = watcher($c, "${P}h/", { prefix => 1, start_revision => $start });
    ok(wait_events($hist, 4), 'history replayed');
    is(ev_str(events($hist)), join(' ', map { "PUT:${P}h/k=h$_" } 1 .. 4), 'history in order');
    is($hist->{msgs}[0]{created}, 1, 'created response before the history');
    put_ok("${P}h/k", 'h5');
    ok(wait_events($hist, 5), 'live event after the history');
    is(events($hist)->[-1]{kv}{value}, 'h5', 'then live events');
    $hist->{h}->cancel(sub {});

    my $wid = watcher($c, "${P}wid", { watch_id => 4242 });
    put_ok("${P}wid", 1);
    ok(wait_events($wid, 1), 'explicit watch_id watch works');
    is_deeply([ map { $_->{watch_id} } @{ $wid->{msgs} } ], [ (4242) x @{ $wid->{msgs} } ],
              'explicit watch_id echoed in every response');
    $wid->{h}->cancel(sub {});
}

# ---------------------------------------------------------------------------
# progress: periodic (progress_notify) and on request

{
    my $w = watcher($c, "${P}prog", { progress_notify => 1 });
    ok(EtcdTest::run_until(5, sub { created($w) }), 'progress watch created');
    my $rev = put_ok("${P}other-key", 'x')->{header}{revision};
    ok(EtcdTest::run_until(5, sub { grep { !$_->{created} && !@{ $_->{events} } } @{ $w->{msgs} } }),
       'a periodic progress notification arrives');
    my ($pn) = grep { !$_->{created} && !@{ $_->{events} } } @{ $w->{msgs} };
    ok($pn && $pn->{header}{revision} >= $rev, 'progress notification revision is current');

    my $q = watcher($c, "${P}prog2");
    ok(EtcdTest::run_until(5, sub { created($q) }), 'second watch created');
    $rev = put_ok("${P}other-key", 'y')->{header}{revision};
    $q->{h}->request_progress;
    ok(EtcdTest::run_until(5, sub { grep { !$_->{created} } @{ $q->{msgs} } }), 'request_progress answered');
    my $ans = (grep { !$_->{created} } @{ $q->{msgs} })[0];
    is_deeply($ans && $ans->{events}, [], 'progress answer has no events');
    ok($ans && $ans->{header}{revision} >= $rev, 'progress answer revision covers the last write');
    $_->{h}->cancel(sub {}) for $w, $q;
}

# ---------------------------------------------------------------------------
# many watches on one client see only their own keys

{
    my @w = map { watcher($c, "${P}many/$_") } 1 .. 50;
    put_ok("${P}many/$_", "m$_") for 1 .. 50;
    ok(EtcdTest::run_until(10, sub { !grep { @{ events($_) } < 1 } @w }), 'all 50 watches got their event');
    EtcdTest::run_until(0.3, sub { 0 });
    my @bad = grep { ev_str(events($w[$_ - 1])) ne "PUT:${P}many/$_=m$_" } 1 .. 50;
    is_deeply(\@bad, [], 'each watch saw exactly its own key');
    $_->{h}->cancel(sub {}) for @w;
}

# ---------------------------------------------------------------------------
# cancel

{
    my $w = watcher($c, "${P}c");
    ok(EtcdTest::run_until(5, sub { created($w) }), 'watch created');
    my @args;
    my $n = 0;
    $w->{h}->cancel(sub { $n++; @args = @_ });
    is($n, 0, 'cancel callback is deferred to the loop');
    put_ok("${P}c", 'after');
    ok(EtcdTest::run_until(5, sub { $n }), 'cancel called back');
    EtcdTest::run_until(0.3, sub { 0 });
    is($n, 1, 'cancel callback ran exactly once');
    is(scalar @args, 2, 'two arguments');
    is_deeply($args[0], {}, 'first argument is an empty hash');
    ok(!defined $args[1], 'second is undef');
    is(scalar @{ events($w) }, 0, 'no event after cancel');
    is(scalar @{ $w->{errs} }, 0, 'no error after cancel');

    my $again = 0;
    $w->{h}->cancel(sub { $again++ });
    ok(EtcdTest::run_until(5, sub { $again }), 'a second cancel also calls back');

    # cancel before the created response arrived
    my $early = watcher($c, "${P}c2");
    my $m = 0;
    $early->{h}->cancel(sub { $m++ });
    put_ok("${P}c2", 'x');
    ok(EtcdTest::run_until(5, sub { $m }), 'early cancel called back');
    EtcdTest::run_until(0.3, sub { 0 });
    is($m, 1, 'once');
    is(scalar @{ events($early) }, 0, 'an early-cancelled watch delivers no event');

    # cancel from inside the watch's own callback
    my ($seen, $cn) = (0, 0);
    my $self;
    $self = $c->watch("${P}c3", sub {
        my ($r) = @_;
        return unless $r && @{ $r->{events} };
        $seen++;
        $self->cancel(sub { $cn++ });
    });
    $c->put("${P}c3", $_, sub {}) for 1 .. 3;
    ok(EtcdTest::run_until(5, sub { $cn }), 'cancel inside the callback');
    EtcdTest::run_until(0.3, sub { 0 });
    is($seen, 1, 'no event after cancelling inside the callback');

    # argument checks
    eval { $w->{h}->cancel };
    like($@, qr/^Usage: EV::Etcd::Watch::cancel\(watch, callback\)/, 'cancel without callback croaks');
    eval { $w->{h}->cancel('x') };
    like($@, qr/callback must be a code reference/, 'cancel with a non-code callback croaks');
    eval { EV::Etcd::Watch::cancel($c, sub {}) };
    like($@, qr/watch is not of type EV::Etcd::Watch/, 'cancel on a client object croaks');
    eval { EV::Etcd::Watch::request_progress('x') };
    like($@, qr/watch is not of type EV::Etcd::Watch/, 'request_progress on a string croaks');
}

# ---------------------------------------------------------------------------
# a watch whose handle is gone keeps delivering; EV::run returns after cancel

{
    my $lone = EV::Etcd->new(endpoints => [ $srv->endpoint ]);
    my $w = watcher($lone, "${P}loop");
    ok(EtcdTest::run_until(5, sub { created($w) }), 'watch created');
    is(EtcdTest::run_loop(1.5), 0, 'an open watch keeps EV::run running');
    $w->{h}->cancel(sub {});
    is(EtcdTest::run_loop(5), 1, 'EV::run returns once the watch is cancelled');
    undef $lone;

    my @got;
    { $c->watch("${P}scope", sub { push @got, $_[0] if $_[0] }) }    # handle dropped at once
    ok(EtcdTest::run_until(5, sub { @got }), 'created delivered without the handle');
    put_ok("${P}scope", 'still');
    ok(EtcdTest::run_until(5, sub { grep { @{ $_->{events} } } @got }), 'events delivered without the handle');
}

# ---------------------------------------------------------------------------
# compaction: one error with compact_revision, nothing after it

{
    my $old = put_ok("${P}cmp", 'c1')->{header}{revision};
    my $rev = put_ok("${P}cmp", 'c2')->{header}{revision};
    put_ok("${P}cmp", 'c3');
    $kv->ok_call('compact', 'compact', $rev);
    my $w = watcher($c, "${P}cmp", { start_revision => $old });
    ok(EtcdTest::run_until(5, sub { @{ $w->{errs} } }), 'watch from a compacted revision fails');
    put_ok("${P}cmp", 'c4');
    EtcdTest::run_until(0.5, sub { 0 });
    is(scalar @{ $w->{errs} }, 1, 'exactly one error');
    is(scalar @{ events($w) }, 0, 'no event delivered');
    my $e = $w->{errs}[0] || {};
    is($e->{code}, 1, 'code 1');
    is($e->{status}, 'CANCELLED', 'CANCELLED');
    is($e->{source}, 'watch', 'source watch');
    is($e->{retryable}, 0, 'not retryable');
    is($e->{compact_revision}, $rev, 'compact_revision is the compaction revision');
    like($e->{message}, qr/compacted/, 'message says compacted');
    my $n = 0;
    $w->{h}->cancel(sub { $n++ });
    ok(EtcdTest::run_until(5, sub { $n }), 'cancel of a finished watch still calls back');
}

# ---------------------------------------------------------------------------
# setup failure, argument checks, destruction

{
    my $dead = EV::Etcd->new(endpoints => [ '127.0.0.1:' . EtcdTest::closed_port() ]);
    my $w = watcher($dead, "${P}x");
    ok(EtcdTest::run_until(5, sub { @{ $w->{errs} } }), 'watch on a refused port fails');
    EtcdTest::run_until(0.5, sub { 0 });
    is(scalar @{ $w->{errs} }, 1, 'one error');
    my $e = $w->{errs}[0] || {};
    is_deeply([ @$e{qw(code status message source)} ], [ 13, 'INTERNAL', 'Watch setup failed', 'watch' ],
              'setup failure error');

    for my $bad ([], ['k'], ['k', {}, sub {}, 1]) {
        eval { $c->watch(@$bad) };
        like($@, qr/^Usage: \$client->watch\(\$key, \[\\%opts,\] \$callback\)/, 'watch with ' . @$bad . ' args croaks');
    }
    eval { $c->watch('k', 'notcode') };
    like($@, qr/callback must be a code reference/, 'non-code callback croaks');
    eval { $c->watch('k', { filters => ['nope'] }, sub {}) };
    like($@, qr/watch: unknown filter 'nope'/, 'unknown filter croaks');
    eval { $c->watch('k', { filters => 'noput' }, sub {}) };
    like($@, qr/watch: filters must be an array reference/, 'non-array filters croak');
    eval { EV::Etcd::watch('EV::Etcd', 'k', sub {}) };
    like($@, qr/client is not of type EV::Etcd/, 'class-method call croaks');

    my $gone = EV::Etcd->new(endpoints => [ $srv->endpoint ]);
    my $gw = watcher($gone, "${P}gone");
    ok(EtcdTest::run_until(5, sub { created($gw) }), 'watch created');
    my $calls = $gw->{calls};
    undef $gone;
    put_ok("${P}gone", 'x');
    EtcdTest::run_until(0.5, sub { 0 });
    is($gw->{calls}, $calls, 'a destroyed client\'s watch is silent');
    my $n = 0;
    $gw->{h}->cancel(sub { $n++ });
    ok(EtcdTest::run_until(5, sub { $n }), 'cancel after the client is gone calls back');
}

undef $c;
$srv->stop;
done_testing;

use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(int_ok bool_ok error_ok);
use EV::Etcd;

# POD "ERRORS" (error hash), "new" (timeout), "RETRIES AND FAILOVER" (timeouts,
# nothing listening, failover, retries), "DESTRUCTION" (independent clients).

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();
my $GOOD = $eps[0];
my $CLOSED = '127.0.0.1:' . EtcdTest::closed_port();

# ---------------------------------------------------------------------------------
# helpers

my @records;

# issue $method on $client and return the record; the callback fills resp/err/at
sub start_call {
    my ($client, $method, @args) = @_;
    my $rec = { n => 0, what => $method, t0 => Time::HiRes::time() };
    push @records, $rec;
    $client->$method(@args, sub {
        $rec->{n}++;
        return if $rec->{n} > 1;
        $rec->{elapsed} = Time::HiRes::time() - $rec->{t0};
        $rec->{argc} = scalar @_;
        ($rec->{resp}, $rec->{err}) = @_;
    });
    return $rec;
}

sub finish {
    my ($name, $secs, @recs) = @_;
    my $ok = EtcdTest::run_until($secs, sub { !grep { !$_->{n} } @recs });
    ok($ok, "$name: called back within $secs s");
    return $ok;
}

sub timed {
    my ($client, $method, @args) = @_;
    my $rec = start_call($client, $method, @args);
    finish("$method", 20, $rec);
    return $rec;
}

# int_ok, bool_ok, error_ok: t/lib/EtcdTest/Shape.pm

# a call that failed: two callback arguments, no response, and the error hash of
# POD "ERRORS" (integer code, integer 0/1 retryable, exactly the five keys,
# the expected code, status and source, retryable as the code says, a string
# message)
sub failed_ok {
    my ($rec, $name, %want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $err = $rec->{err};
    is($rec->{argc}, 2, "$name: callback got two arguments");
    ok(!defined $rec->{resp}, "$name: response is undef");
    unless (ref $err eq 'HASH') { fail("$name: error is a hash"); diag(explain($rec->{resp})); return }
    int_ok($err, 'code', $name);
    bool_ok($err, 'retryable', $name);
    error_ok($err, $name, %want);
    ok(defined $err->{message} && !ref $err->{message}, "$name: message is a string");
}

sub ok_resp {
    my ($rec, $name) = @_;
    my $good = ok(ref $rec->{resp} eq 'HASH' && !defined $rec->{err}, $name);
    diag(explain($rec->{err})) if !$good && $rec->{err};
    return ref $rec->{resp} eq 'HASH' ? $rec->{resp} : {};
}

my %unavailable = (code => 14, status => 'UNAVAILABLE');    # retryable 1: error_ok checks it against the code

# ---------------------------------------------------------------------------------
# nothing listening: every method fails promptly with UNAVAILABLE and its source label

{
    my $dead = EV::Etcd->new(endpoints => [$CLOSED]);
    my %calls = (
        range   => [ get     => "${P}k" ],
        put     => [ put     => "${P}k", 'v' ],
        delete  => [ delete  => "${P}k" ],
        compact => [ compact => 1 ],
        txn     => [ txn     => [], [ { request_put => { key => "${P}k", value => 'v' } } ], [] ],
        status  => [ status  => () ],
    );
    for my $source (sort keys %calls) {
        my ($method, @args) = @{ $calls{$source} };
        my $rec = timed($dead, $method, @args);
        failed_ok($rec, "$method against a closed port", %unavailable, source => $source);
        ok(length($rec->{err}{message} // ''), "$method against a closed port: message is not empty");
        cmp_ok($rec->{elapsed}, '<', 1, "$method against a closed port: error within 1 s");
    }

    # several at once
    my @recs = map { start_call($dead, 'get', "${P}k$_") } 1 .. 10;
    finish('ten concurrent gets against a closed port', 10, @recs);
    is(scalar(grep { $_->{err} && $_->{err}{code} == 14 && $_->{err}{source} eq 'range' } @recs), 10,
       'ten concurrent gets: ten UNAVAILABLE errors');
    cmp_ok((sort { $b <=> $a } map { $_->{elapsed} // 99 } @recs)[0], '<', 1, 'ten concurrent gets: all within 1 s');

    # the client keeps answering later calls the same way
    my $rec = timed($dead, 'get', "${P}k");
    failed_ok($rec, 'a later get on the same dead client', %unavailable, source => 'range');
}

# with short timeouts (and retries configured) the error still arrives in time
for my $case ([ 1, 3, 3 ], [ 1, 3, 10 ], [ 2, 5, 3 ]) {
    my ($timeout, $bound, $retries) = @$case;
    my $dead = EV::Etcd->new(endpoints => [$CLOSED], timeout => $timeout, max_retries => $retries);
    for my $m ([ 'get', "${P}k" ], [ 'put', "${P}k", 'v' ], [ 'status' ]) {
        my ($method, @args) = @$m;
        my $rec = timed($dead, $method, @args);
        my $name = "$method, timeout $timeout, max_retries $retries, closed port";
        is($rec->{err} && $rec->{err}{code}, 14, "$name: UNAVAILABLE");
        cmp_ok($rec->{elapsed} // 99, '<', $bound, "$name: error within $bound s");
    }
}

# two dead endpoints: still a prompt UNAVAILABLE
{
    my $dead2 = EV::Etcd->new(endpoints => [ $CLOSED, '127.0.0.1:' . EtcdTest::closed_port() ]);
    my $rec = timed($dead2, 'get', "${P}k");
    failed_ok($rec, 'get with two closed endpoints', %unavailable, source => 'range');
    cmp_ok($rec->{elapsed}, '<', 3, 'two closed endpoints: error within 3 s');
    $rec = timed($dead2, 'put', "${P}k", 'v');
    failed_ok($rec, 'put with two closed endpoints', %unavailable, source => 'put');
}

# ---------------------------------------------------------------------------------
# failover (POD "RETRIES AND FAILOVER"): a request that cannot reach one endpoint is
# tried on the next

{
    my $fo = EV::Etcd->new(endpoints => [ $CLOSED, $GOOD ], timeout => 10);
    my $rec = timed($fo, 'put', "${P}failover", 'reached');
    my $r = ok_resp($rec, 'put with [closed, good] endpoints succeeds');
    ok($r->{header} && $r->{header}{revision} > 0, 'failover put: real response');
    $rec = timed($fo, 'get', "${P}failover");
    $r = ok_resp($rec, 'get with [closed, good] endpoints succeeds');
    is($r->{kvs} && $r->{kvs}[0] && $r->{kvs}[0]{value}, 'reached', 'failover get returns the value');
    $rec = timed($fo, 'txn', [ { key => "${P}failover", value => 'reached' } ],
                 [ { request_put => { key => "${P}failover", value => 'txn' } } ], []);
    $r = ok_resp($rec, 'txn with [closed, good] endpoints succeeds');
    is($r->{succeeded}, 1, 'failover txn: compare held');
    $rec = timed($fo, 'status');
    $r = ok_resp($rec, 'status with [closed, good] endpoints succeeds');
    like($r->{version} // '', qr/^\d+\.\d+\.\d+/, 'failover status: version');
    $rec = timed($fo, 'delete', "${P}failover");
    $r = ok_resp($rec, 'delete with [closed, good] endpoints succeeds');
    is($r->{deleted}, 1, 'failover delete: deleted 1');
}

# an http:// endpoint is accepted (POD "new", option endpoints)
SKIP: {
    skip "endpoint $GOOD is not a plain host:port", 2 unless $GOOD =~ m{^[^/]+:\d+\z};
    my $web = EV::Etcd->new(endpoints => ["http://$GOOD"], timeout => 10);
    my $rec = timed($web, 'put', "${P}http", 'scheme');
    ok_resp($rec, 'put through an http:// endpoint');
    $rec = timed($web, 'get', "${P}http");
    is(ok_resp($rec, 'get through an http:// endpoint')->{kvs}[0]{value}, 'scheme', 'http:// endpoint: value');
}

# ---------------------------------------------------------------------------------
# independent clients (POD "DESTRUCTION": other clients are not affected)

{
    my $dead = EV::Etcd->new(endpoints => [$CLOSED]);
    my $live = EV::Etcd->new(endpoints => [$GOOD], timeout => 10);
    my $d = start_call($dead, 'get', "${P}x");
    my $l = start_call($live, 'put', "${P}indep", 'live');
    finish('a dead and a live client side by side', 20, $d, $l);
    is($d->{err} && $d->{err}{code}, 14, 'the dead client fails');
    ok_resp($l, 'the live client succeeds at the same time');

    # destroying one client with a request in flight leaves the other's request alone
    my $gone = EV::Etcd->new(endpoints => [$GOOD], timeout => 10);
    my $g = start_call($gone, 'get', "${P}indep");
    my $k = start_call($live, 'get', "${P}indep");
    undef $gone;
    finish('the surviving client', 20, $k);
    is(ok_resp($k, 'get on the surviving client')->{kvs}[0]{value}, 'live', 'surviving client: value');
    EtcdTest::run_until(0.5, sub { 0 });
    is($g->{n}, 0, 'the destroyed client called nothing back');
    undef $dead;
    my $again = timed($live, 'get', "${P}indep");
    is(ok_resp($again, 'the live client works after the others are gone')->{kvs}[0]{value}, 'live', 'value again');
}

# ---------------------------------------------------------------------------------
# deadlines (POD "RETRIES AND FAILOVER"): a private member that stops answering (SIGSTOP)

{
    my $srv2 = EtcdTest->start;
    my $resumed = 0;
    my $resume = sub { $srv2->resume unless $resumed++ };
    my $guard = bless [$resume], 'Resume::Guard';

    my $slow = EV::Etcd->new(endpoints => [ $srv2->endpoint ], timeout => 1);
    my $fraction = EV::Etcd->new(endpoints => [ $srv2->endpoint ], timeout => 0.5);
    my $warm = timed($slow, 'put', "${P}paused", 'before');
    ok_resp($warm, 'private member answers before the pause');
    ok_resp(timed($fraction, 'get', "${P}paused"), 'second client answers before the pause');

    $srv2->pause;
    my @recs = (
        [ start_call($slow, 'get', "${P}paused"),      'range',  'get' ],
        [ start_call($slow, 'put', "${P}paused", 'x'), 'put',    'put' ],
        [ start_call($slow, 'status'),                 'status', 'status' ],
        [ start_call($slow, 'txn', [], [], []),        'txn',    'txn' ],
        [ start_call($fraction, 'get', "${P}paused"),  'range',  'get with timeout => 0.5 (clamped to 1 s)' ],
    );
    finish('requests to a paused member', 10, map { $_->[0] } @recs);
    for my $r (@recs) {
        my ($rec, $source, $name) = @$r;
        failed_ok($rec, "$name to a paused member", code => 4, status => 'DEADLINE_EXCEEDED', source => $source);
        my $t = $rec->{elapsed} // 99;
        ok($t >= 0.9 && $t <= 3, "$name to a paused member: deadline after 0.9-3 s (took " . sprintf('%.2f', $t) . ' s)');
    }

    $resume->();
    my $after = start_call($slow, 'get', "${P}paused");
    finish('get after resume', 20, $after);
    my $resp = ok_resp($after, 'the client works again after the member resumes');
    ok($resp->{kvs} && $resp->{kvs}[0] && $resp->{kvs}[0]{value} =~ /^(?:before|x)\z/,
       'after resume: the key is readable');
    ok_resp(timed($slow, 'delete', "${P}paused"), 'cleanup on the private member');
    undef $slow;
    undef $fraction;
    $srv2->stop;
}

# ---------------------------------------------------------------------------------
# calls issued together from one callback travel as one batch (and run under one
# deadline on the runtime thread): against a member that stops answering, each
# still fails once with DEADLINE_EXCEEDED in time, and the next calls go to the
# client's other endpoint

{
    my $srv3 = EtcdTest->start;
    my $resumed = 0;
    my $resume = sub { $srv3->resume unless $resumed++ };
    my $guard = bless [$resume], 'Resume::Guard';
    my $live = EV::Etcd->new(endpoints => [$GOOD], timeout => 10);
    my $c = EV::Etcd->new(endpoints => [ $srv3->endpoint, $GOOD ], timeout => 1);
    my $first = ok_resp(timed($c, 'status'), 'batch: the first endpoint answers before the pause');
    my $good_id = ok_resp(timed($live, 'status'), 'batch: the other member answers')->{header}{member_id};
    isnt($first->{header}{member_id}, $good_id, 'batch: the first answer came from the first endpoint');

    $srv3->pause;
    my @batch;
    my $outer = start_call($live, 'get', "${P}batch-trigger");
    # issued from inside a callback: these go out together when the drain ends
    $live->get("${P}batch-trigger", sub {
        push @batch, start_call($c, 'get', "${P}batch$_") for 1 .. 10;
        push @batch, start_call($c, 'put', "${P}batch$_", 'v') for 1 .. 10;
    });
    finish('batch trigger', 10, $outer);
    EtcdTest::run_until(10, sub { @batch == 20 });
    is(scalar @batch, 20, 'batch: 20 calls issued from one callback');
    finish('batch of calls to a paused member', 10, @batch);
    my @late = grep { ($_->{elapsed} // 99) < 0.9 || ($_->{elapsed} // 99) > 3 } @batch;
    is(scalar @late, 0, 'batch: every call ended after 0.9-3 s');
    is_deeply([ map { $_->{err} && $_->{err}{status} } @batch ], [ ('DEADLINE_EXCEEDED') x 20 ],
              'batch: every call failed with DEADLINE_EXCEEDED');
    is_deeply([ map { $_->{err} && $_->{err}{source} } @batch ], [ ('range') x 10, ('put') x 10 ],
              'batch: each error names its call');

    # calls of two clients issued together: the answered ones are not held
    # back by the other client's calls that wait for their deadline
    my (@mixed, $fast);
    my $c2 = EV::Etcd->new(endpoints => [ $srv3->endpoint ], timeout => 1);
    my $trigger = start_call($live, 'get', "${P}batch-trigger");
    $live->get("${P}batch-trigger", sub {
        push @mixed, start_call($c2, 'get', "${P}mixed$_") for 1 .. 3;
        $fast = start_call($live, 'put', "${P}mixed", 'v');
        push @mixed, start_call($c2, 'put', "${P}mixed", 'v');
    });
    finish('mixed trigger', 10, $trigger);
    EtcdTest::run_until(10, sub { $fast && @mixed == 4 });
    finish('mixed batch', 10, $fast, @mixed);
    ok_resp($fast, 'mixed batch: the live client\'s put is answered');
    ok(($fast->{elapsed} // 99) < 0.8, 'mixed batch: ... without waiting for the stopped member\'s deadline (took '
       . sprintf('%.2f', $fast->{elapsed} // 99) . ' s)');
    is_deeply([ map { $_->{err} && $_->{err}{status} } @mixed ], [ ('DEADLINE_EXCEEDED') x 4 ],
              'mixed batch: the stopped member\'s calls time out');
    undef $c2;

    my $next = ok_resp(timed($c, 'status'), 'batch: the next call is answered while the first member is stopped');
    is($next->{header}{member_id}, $good_id, 'batch: ... by the other endpoint');
    $resume->();
    undef $c;
    undef $live;
    $srv3->stop;
}

# ---------------------------------------------------------------------------------

{
    my $c = EV::Etcd->new(endpoints => [@eps], timeout => 10);
    ok_resp(timed($c, 'delete', $P, { prefix => 1 }), 'cleanup');
}
EtcdTest::run_until(0.5, sub { 0 });
is_deeply([ map { "$_->{what}:$_->{n}" } grep { $_->{n} > 1 } @records ], [], 'no callback was called twice');

done_testing;

package Resume::Guard;
sub DESTROY { $_[0][0]->() }

use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use IO::Select;

# Offline: nothing here needs an etcd server.  POD of EV::Etcd, sections "SYNOPSIS",
# "new", "THREADS AND FORK" and the method inventory.

my (%main_subs_before, $ev_loaded_before, $threads_before);

sub thread_count {
    open my $fh, '<', '/proc/self/status' or return undef;
    while (<$fh>) { return $1 if /^Threads:\s+(\d+)/ }
    return undef;
}

BEGIN {
    no strict 'refs';
    $ev_loaded_before = exists $INC{'EV.pm'} ? 1 : 0;
    %main_subs_before = map { $_ => 1 } grep { defined &{"main::$_"} } keys %main::;
    $threads_before = thread_count();
}

# POD "SYNOPSIS": use EV::Etcd "loads EV as well" -- no "use EV" before this line.
use EV::Etcd;

my %main_subs_after;
{
    no strict 'refs';
    %main_subs_after = map { $_ => 1 } grep { defined &{"main::$_"} } keys %main::;
}

is($ev_loaded_before, 0, 'EV was not loaded before EV::Etcd');
ok(exists $INC{'EV.pm'}, 'use EV::Etcd loaded EV');
ok(defined &EV::run, 'EV::run is available after use EV::Etcd');

# version, exports, inheritance
is($EV::Etcd::VERSION, '0.02', '$EV::Etcd::VERSION is 0.02');
{
    no warnings 'once';
    is(scalar(@EV::Etcd::EXPORT),    0, '@EXPORT is empty');
    is(scalar(@EV::Etcd::EXPORT_OK), 0, '@EXPORT_OK is empty');
    is(scalar(@EV::Etcd::ISA),       0, '@ISA is empty (no Exporter, no base class)');
}
ok(!EV::Etcd->isa('Exporter'), 'EV::Etcd is not an Exporter');
is_deeply([ sort grep { !$main_subs_before{$_} } keys %main_subs_after ], [],
    'use EV::Etcd exported nothing into main::');

# method inventory (the KV/status foundation: POD "KV METHODS", "status") and
# absence of "range"
can_ok('EV::Etcd', qw(new DESTROY get put delete txn compact status));
ok(!EV::Etcd->can('range'), 'there is no range method');

# The module's table of methods and the tests' catalogue of calls
# (EtcdTest::method_calls, which the fork, destroy and bad-input tests run
# through) list the same methods: a new method is tested there too.
{
    require lib;
    lib->import('t/lib');
    require EtcdTest;
    my $unary = EV::Etcd::_unary_methods();
    ok(@$unary >= 40 && (grep { $_ eq 'get' } @$unary), '_unary_methods lists the unary methods');
    my %catalogue = map { $_->[0] => 1 } EtcdTest::method_calls('/p/');
    my @methods = (@$unary, qw(watch lease_keepalive_start election_observe snapshot));
    is_deeply([ grep { !$catalogue{$_} } @methods ], [], 'every method is in the tests\' catalogue');
    is_deeply([ grep { !EV::Etcd->can($_) } @methods ], [], 'every listed method exists');
}

# POD "THREADS AND FORK": no thread exists until the first client is created
SKIP: {
    skip 'no /proc/self/status on this system', 1 unless defined $threads_before;
    is(thread_count(), $threads_before, 'loading EV::Etcd started no thread');
}

# POD "new": new never contacts the server.  A listening socket we own must see no
# connection attempt after new() and some event-loop time.
{
    my $listener = IO::Socket::INET->new(
        Listen => 5, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', ReuseAddr => 1,
    ) or die "cannot listen: $!";
    my $port = $listener->sockport;

    my $client = EV::Etcd->new(endpoints => ["127.0.0.1:$port"]);
    isa_ok($client, 'EV::Etcd', 'new with a listening but silent endpoint');
    is(ref $client, 'EV::Etcd', 'new blesses into EV::Etcd');

    my $guard = EV::timer(0.5, 0, sub { EV::break(EV::BREAK_ALL) });
    EV::run;
    ok(!IO::Select->new($listener)->can_read(0.2), 'new() made no connection to the endpoint');

    undef $client;
    ok(!IO::Select->new($listener)->can_read(0.2), 'destroying an unused client made no connection either');
}

# POD "new": unreachable endpoints are fine at construction time
{
    my $c1 = EV::Etcd->new(endpoints => ['127.0.0.1:1']);
    isa_ok($c1, 'EV::Etcd', 'new with an unreachable endpoint');
    my $c2 = EV::Etcd->new(endpoints => ['no-such-host.invalid:2379']);
    isa_ok($c2, 'EV::Etcd', 'new with an unresolvable host');
    my $c3 = EV::Etcd->new();
    isa_ok($c3, 'EV::Etcd', 'new without options (default endpoint)');
}

# POD "THREADS AND FORK": one runtime thread serves every client of the process
SKIP: {
    skip 'no /proc/self/status on this system', 1 unless defined $threads_before;
    my $first = EV::Etcd->new(endpoints => ['127.0.0.1:1']);
    my $with_one = thread_count();
    my @more = map { EV::Etcd->new(endpoints => ['127.0.0.1:1']) } 1 .. 3;
    is(thread_count(), $with_one, 'more clients add no threads (one runtime serves all clients)');
}

# new through a subclass name gives an EV::Etcd (blessing into either is allowed;
# POD "new" promises neither)
{
    package My::Etcd::Subclass;
    our @ISA = ('EV::Etcd');
}
{
    my $c = My::Etcd::Subclass->new(endpoints => ['127.0.0.1:1']);
    isa_ok($c, 'EV::Etcd', 'new called through a subclass name');
}

# POD "new" (endpoints): endpoint size limit (2048 bytes inclusive)
{
    my $ok_ep  = ('a' x (2048 - 5)) . ':2379';
    is(length $ok_ep, 2048, 'test endpoint is exactly 2048 bytes');
    my $c = eval { EV::Etcd->new(endpoints => [$ok_ep]) };
    is($@, '', 'a 2048-byte endpoint is accepted');
    isa_ok($c, 'EV::Etcd', 'client with a 2048-byte endpoint');

    my $big_ep = ('a' x (2049 - 5)) . ':2379';
    my $r = eval { EV::Etcd->new(endpoints => [$big_ep]); 1 };
    ok(!$r, 'a 2049-byte endpoint croaks');
    like($@, qr/peer URL too large: 2049 bytes \(max 2048\)/, 'croak message for a 2049-byte endpoint');

    $r = eval { EV::Etcd->new(endpoints => ['127.0.0.1:2379', $big_ep . 'xx']); 1 };
    ok(!$r, 'an oversized second endpoint croaks too');
    like($@, qr/peer URL too large: 2051 bytes \(max 2048\)/, 'croak message names the size of the offending endpoint');
}

# POD "new": endpoints that are not an array reference are ignored (so never size-checked)
{
    for my $case (
        [ 'a plain string',   'x' x 5000 ],
        [ 'a hash reference', { '127.0.0.1:1' => 1 } ],
        [ 'undef',            undef ],
        [ 'a code reference', sub { 1 } ],
    ) {
        my ($name, $value) = @$case;
        my $c = eval { EV::Etcd->new(endpoints => $value) };
        is($@, '', "endpoints given as $name: no croak");
        isa_ok($c, 'EV::Etcd', "endpoints given as $name");
    }
    my $c = eval { EV::Etcd->new(endpoints => []) };
    isa_ok($c, 'EV::Etcd', 'empty endpoint list (default endpoint)');
    $c = eval { EV::Etcd->new(endpoints => [undef, 42, [], {}]) };
    is($@, '', 'non-string endpoint elements: no croak');
    isa_ok($c, 'EV::Etcd', 'non-string endpoint elements are replaced, not rejected');
}

# POD "new": unknown options ignored, a trailing key without value ignored, loose numbers
# accepted
{
    local $SIG{__WARN__} = sub { };    # the POD says nothing about warnings here
    my $c = eval { EV::Etcd->new(endpoints => ['127.0.0.1:1'], no_such_option => 1, Timeout => 'x') };
    is($@, '', 'unknown options: no croak');
    isa_ok($c, 'EV::Etcd', 'unknown options are ignored');
    $c = eval { EV::Etcd->new(endpoints => ['127.0.0.1:1'], 'timeout') };
    is($@, '', 'trailing key without value: no croak');
    isa_ok($c, 'EV::Etcd', 'trailing key without value is ignored');
    $c = eval { EV::Etcd->new(endpoints => ['127.0.0.1:1'], timeout => 0.5, max_retries => -3,
                              health_interval => -1, on_health_change => 'not code', auth_token => '') };
    is($@, '', 'out-of-range option values: no croak');
    isa_ok($c, 'EV::Etcd', 'out-of-range option values are clamped/ignored');
}

# POD "new": require_leader, keepalive_time, keepalive_timeout, keepalive_while_idle
{
    for my $k (qw(keepalive_time keepalive_timeout)) {
        for my $bad (0, -1, 0.5) {
            my $c = eval { EV::Etcd->new(endpoints => ['127.0.0.1:1'], $k => $bad) };
            ok(!$c, "$k => $bad: no client");
            like($@, qr/^\QEV::Etcd->new: $k must be a whole number of seconds, at least 1\E at \Q${\ __FILE__}\E line \d+/,
                 "$k => $bad croaks naming the option and the caller");
        }
    }
    my $c = eval { EV::Etcd->new(endpoints => ['127.0.0.1:1'], require_leader => 0, keepalive_time => 30, leader_check_interval => -1,
                                 keepalive_timeout => 1, keepalive_while_idle => 1) };
    is($@, '', 'liveness and require_leader options: no croak');
    isa_ok($c, 'EV::Etcd', 'liveness and require_leader options accepted');
}

# methods called on something that is not a client croak (POD "ERRORS": bad
# arguments croak at once)
{
    my $called = 0;
    my $cb = sub { $called++ };
    my @cases = (
        [ 'get as class method',     sub { EV::Etcd->get('k', $cb) } ],
        [ 'put as class method',     sub { EV::Etcd->put('k', 'v', $cb) } ],
        [ 'delete as class method',  sub { EV::Etcd->delete('k', $cb) } ],
        [ 'compact as class method', sub { EV::Etcd->compact(1, $cb) } ],
        [ 'status as class method',  sub { EV::Etcd->status($cb) } ],
        [ 'txn as class method',     sub { EV::Etcd->txn([], [], [], $cb) } ],
        [ 'get on a foreign object', sub { EV::Etcd::get(bless({}, 'Some::Other'), 'k', $cb) } ],
        [ 'get on an unblessed hash', sub { EV::Etcd::get({}, 'k', $cb) } ],
        [ 'put on undef',            sub { EV::Etcd::put(undef, 'k', 'v', $cb) } ],
        [ 'status on a number',      sub { EV::Etcd::status(42, $cb) } ],
    );
    for my $case (@cases) {
        my ($name, $code) = @$case;
        my $r = eval { $code->(); 1 };
        ok(!$r, "$name croaks");
        like($@, qr/client is not of type EV::Etcd/, "$name: croak message");
    }
    # the croaking calls above scheduled nothing
    my $guard = EV::timer(0.3, 0, sub { EV::break(EV::BREAK_ALL) });
    EV::run;
    is($called, 0, 'no callback of a croaking call ever ran');
}

done_testing;

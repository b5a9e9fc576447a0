package EtcdTest::Caller;

# One-callback calls for the test files: call a method, run the loop until
# its callback ran once, check it ran exactly once.

use strict;
use warnings;

use Carp qw(croak);
use Scalar::Util qw(refaddr);

# EtcdTest::Caller->new($client, timeout => $seconds, check_argc => 0|1)
# timeout: how long call() waits for the callback (default 15 s); check_argc:
# fail unless the callback got exactly two arguments (default 1).
sub new {
    my ($class, $client, %opt) = @_;
    croak 'EtcdTest::Caller->new: client required' unless $client;
    return bless {
        client     => $client,
        timeout    => $opt{timeout} // 15,
        check_argc => $opt{check_argc} // 1,
        records    => [],
    }, $class;
}

# Every callback record so far ({ what, n, argc, resp, err }), for the
# "every callback was called exactly once" check at the end of a file.
sub records { @{ $_[0]{records} } }

# EtcdTest::Caller::CB stands for the callback among the arguments of start,
# call, ok_call and err_call, for a call whose callback is not its last
# argument (txn(callback => $cb, compare => [...])): the callback takes its
# place there instead of being appended.
my $CB = \'EtcdTest::Caller::CB';
sub CB () { $CB }
sub _is_cb { ref $_[0] && refaddr($_[0]) == refaddr($CB) }

# Issues $client->$method(@args, $cb) without waiting, for calls that must
# overlap (a lock waiting for another holder).  Returns the record, which the
# callback fills in: n, argc, resp, err, and at (Time::HiRes time of the call).
sub start {
    my ($self, $method, @args) = @_;
    require Time::HiRes;
    my $rec = { n => 0, what => $method };
    push @{ $self->{records} }, $rec;
    my $cb = sub {
        $rec->{n}++;
        return if $rec->{n} > 1;
        $rec->{argc} = scalar @_;
        ($rec->{resp}, $rec->{err}) = @_;
        $rec->{at} = Time::HiRes::time();
    };
    my $placed = grep { _is_cb($_) } @args;
    # the method's own return value: the handle of lock, election_campaign
    $rec->{ret} = $self->{client}->$method((map { _is_cb($_) ? $cb : $_ } @args), $placed ? () : $cb);
    return $rec;
}

# EtcdTest::Caller->exactly_once(@callers): lets late duplicates arrive (0.3 s
# of loop), then checks that every record of every caller was called back once.
sub exactly_once {
    my ($class, @callers) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    require Test::More;
    EtcdTest::run_until(0.3, sub { 0 });
    Test::More::is_deeply([ map { "$_->{what}: $_->{n}" } grep { $_->{n} != 1 } map { $_->records } @callers ],
                          [], 'every callback was called exactly once');
}

# Grants a lease that must succeed; returns its id (0 on failure) and keeps it
# for revoke_leases, which revokes every lease granted so far (at the end of a file).
sub lease {
    my ($self, $ttl) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    my $g = $self->ok_call("lease_grant $ttl", 'lease_grant', $ttl);
    push @{ $self->{leases} }, $g->{id} if $g->{id};
    return $g->{id} // 0;
}

sub revoke_leases {
    my ($self) = @_;
    $self->call('lease_revoke', $_) for splice @{ $self->{leases} || [] };
}

# Calls $client->$method(@args, $cb) and runs the loop until $cb ran (fails a
# test and returns the empty list on timeout).  Returns ($resp, $err, $rec).
sub call {
    my ($self, $method, @args) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    require Test::More;
    my $rec = $self->start($method, @args);
    my $timeout = $self->{timeout};
    unless (EtcdTest::run_until($timeout, sub { $rec->{n} })) {
        Test::More::fail("$method: callback within $timeout s");
        return;
    }
    Test::More::is($rec->{argc}, 2, "$method: callback got exactly two arguments")
        if $self->{check_argc} && $rec->{argc} != 2;
    return ($rec->{resp}, $rec->{err}, $rec);
}

# A call that must succeed; returns the response (or {} so that later tests
# fail cleanly).
sub ok_call {
    my ($self, $name, $method, @args) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    my ($resp, $err) = $self->call($method, @args);
    my $good = Test::More::ok(ref $resp eq 'HASH' && !defined $err, $name);
    Test::More::diag(Test::More::explain($err)) if !$good && $err;
    return ref $resp eq 'HASH' ? $resp : {};
}

# A call that must fail; returns the error hash (or {}).
sub err_call {
    my ($self, $name, $method, @args) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    my ($resp, $err) = $self->call($method, @args);
    Test::More::ok(!defined $resp && ref $err eq 'HASH', $name)
        or Test::More::diag(Test::More::explain($resp));
    return ref $err eq 'HASH' ? $err : {};
}

1;

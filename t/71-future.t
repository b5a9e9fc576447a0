use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
BEGIN { EtcdTest::need_modules(qw(Future Future::AsyncAwait)) }
use Future::AsyncAwait;
use EV::Etcd;
use EV::Etcd::Future;

# EV::Etcd::Future: request methods return futures, done with the response
# or failed with (message, 'etcd', error hash); ->get and await drive EV.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();
my $client = EV::Etcd->new(endpoints => [@eps], timeout => 10);

# EV::Etcd alone does not load Future
{
    my @inc = map { "-I$_" } grep { !ref } @INC;
    my $out = `$^X @inc -e "use EV::Etcd; print exists \\\$INC{'Future.pm'} ? 'loaded' : 'not loaded'"`;
    is($out, 'not loaded', 'use EV::Etcd does not load Future');
}

eval { EV::Etcd::Future->new('EV::Etcd') };
like($@, qr/^EV::Etcd::Future->new: client must be an EV::Etcd object/, 'new wants a client object');

my $fe = EV::Etcd::Future->new($client);
isa_ok($fe, 'EV::Etcd::Future');
is($fe->client, $client, 'client accessor');
isa_ok($client->future, 'EV::Etcd::Future', '$client->future');
is($client->future->client, $client, '$client->future wraps the client');

# ---------------------------------------------------------------------------------
# done futures carry the response hash

my $f = $fe->put("${P}f1", 'one');
isa_ok($f, 'Future');
ok(!$f->is_ready, 'not ready before the loop ran');
my $put = $f->get;
ok($f->is_done, 'put future done');
ok($put->{header}{revision} > 0, 'put response has a header revision');

my $got = $fe->get("${P}f1")->get;
is($got->{count}, 1, 'get count');
is($got->{kvs}[0]{value}, 'one', 'get value');
is($got->{kvs}[0]{mod_revision}, $put->{header}{revision}, 'get mod_revision = put revision');

# several at once
my @fs = map { $fe->put("${P}many$_", "v$_") } 1 .. 5;
my @r = Future->needs_all(@fs)->get;
is(scalar(@r), 5, 'needs_all of five puts');
my $all = $fe->get("${P}many", { prefix => 1 })->get;
is_deeply([ map { $_->{value} } @{ $all->{kvs} } ], [ map { "v$_" } 1 .. 5 ], 'five values');

# a chain run by EV::run itself
my $chained;
$fe->get("${P}f1")->then(sub { $fe->put("${P}f2", $_[0]{kvs}[0]{value} . '+') })
   ->then(sub { $fe->get("${P}f2") })
   ->on_done(sub { $chained = $_[0]{kvs}[0]{value} })
   ->retain;
ok(EtcdTest::run_until(10, sub { defined $chained }), 'chain finished under EV::run');
is($chained, 'one+', 'chained value');

# every one-shot method of the client is there, lease_keepalive included
for my $m (qw(get put delete txn compact status lease_grant lease_revoke lease_keepalive
              lock unlock election_campaign election_leader member_list user_list role_list)) {
    ok(EV::Etcd::Future->can($m), "adapter has $m");
}
ok(!EV::Etcd::Future->can($_), "adapter leaves $_ on the client")
    for qw(watch election_observe lease_keepalive_start);
my $lease = $fe->lease_grant(30)->get;
my $ka = $fe->lease_keepalive($lease->{id})->get;
is($ka->{id}, $lease->{id}, 'lease_keepalive future: lease id');
ok($ka->{ttl} > 0 && $ka->{ttl} <= 30, 'lease_keepalive future: ttl');
is_deeply([ keys %{ $fe->lease_revoke($lease->{id})->get } ], ['header'], 'lease_revoke future');

# ---------------------------------------------------------------------------------
# failed futures: (message, 'etcd', error hash)

my $fail = $fe->lease_revoke(987654321001);
EtcdTest::run_until(10, sub { $fail->is_ready });
ok($fail->is_failed, 'revoke of an unknown lease fails');
my ($msg, $cat, $err) = $fail->failure;
like($msg, qr/lease not found/, 'failure message');
is($cat, 'etcd', 'failure category');
is(ref $err, 'HASH', 'failure details: the error hash');
is($err->{status}, 'NOT_FOUND', 'error hash status');
is($err->{code}, 5, 'error hash code');
is($err->{message}, $msg, 'error hash message = failure message');
eval { $fail->get };
my $x = $@;
isa_ok($x, 'Future::Exception', '->get of a failed future dies with');
is(eval { $x->category }, 'etcd', 'exception category');
is(eval { ($x->details)[0]{status} }, 'NOT_FOUND', 'exception details carry the error hash');

# bad arguments croak at once, as with the client
eval { $fe->get() };
like($@, qr/^Usage: \$client->get\(/, 'missing key croaks at once');

# ---------------------------------------------------------------------------------
# async / await

async sub bump {
    my ($key) = @_;
    for my $try (1 .. 5) {
        my $r   = await $fe->get($key);
        my $old = $r->{kvs}[0];
        my $t   = await $fe->txn(
            [ { key => $key, mod_revision => $old ? $old->{mod_revision} : 0 } ],
            [ { put => { key => $key, value => ($old ? $old->{value} : 0) + 1 } } ],
            []);
        return $t->{header}{revision} if $t->{succeeded};
    }
    die "no luck\n";
}

my @bumps = map { bump("${P}counter") } 1 .. 3;
my @revs  = Future->needs_all(@bumps)->get;
is(scalar(grep { $_ > 0 } @revs), 3, 'three async compare-and-swap increments');
is($fe->get("${P}counter")->get->{kvs}[0]{value}, 3, 'counter is 3');

async sub caught {
    my $r = eval { await $fe->lease_revoke(987654321002); 'no error' };
    return $r // $@;
}
my $exc = caught()->get;
isa_ok($exc, 'Future::Exception', 'await of a failure throws');
is(eval { ($exc->details)[0]{status} }, 'NOT_FOUND', 'and it carries the error hash');

# ---------------------------------------------------------------------------------
# cancelled futures ignore the late answer; a future nothing can finish croaks

my $c = $fe->get("${P}f1");
$c->cancel;
my $after = $fe->get("${P}f1")->get;
ok($c->is_cancelled, 'cancelled future stays cancelled');
is($after->{kvs}[0]{value}, 'one', 'the client works after a cancelled future');

eval { EV::Etcd::Future::EV->new->get };
like($@, qr/cannot complete: the EV loop has nothing left to wait for/,
    'a future nothing can finish croaks instead of hanging');

EtcdTest::cleanup($client);
done_testing;

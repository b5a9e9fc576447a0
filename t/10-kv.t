use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(int_ok bool_ok bytes_ok keys_are kv_ok);
use EV::Etcd;

# POD "KV METHODS", "RESPONSES" and "ERRORS": get / put / delete with every option,
# asserted by value.

my @eps    = EtcdTest::endpoints();
my $P      = EtcdTest::prefix();
my $client = EV::Etcd->new(endpoints => [@eps], timeout => 10);

# ---------------------------------------------------------------------------------
# helpers

# call / ok_call / err_call: t/lib/EtcdTest.pm (EtcdTest::Caller); 15 s per callback,
# exactly two callback arguments, every record checked for "exactly once" at the end
my $caller = EtcdTest::Caller->new($client, timeout => 15);

# int_ok, bool_ok, bytes_ok, keys_are, kv_ok: t/lib/EtcdTest/Shape.pm

# The header of POD "RESPONSES", and the same cluster (and member) in every
# response of this file.
my ($cluster_id, $member_id);
sub header_ok {
    my ($h, $name) = @_;
    $name .= ' header';
    keys_are($h, [qw(cluster_id member_id revision raft_term)], $name);
    int_ok($h, $_, $name, 1) for qw(cluster_id member_id raft_term);
    int_ok($h, 'revision', $name);
    cmp_ok($h->{revision},  '>', 0, "$name: revision > 0");
    cmp_ok($h->{raft_term}, '>', 0, "$name: raft_term > 0");
    ok($h->{cluster_id} != 0, "$name: cluster_id is not 0");
    ok($h->{member_id} != 0,  "$name: member_id is not 0");
    $cluster_id //= $h->{cluster_id};
    $member_id  //= $h->{member_id};
    is($h->{cluster_id}, $cluster_id, "$name: same cluster_id as before");
    is($h->{member_id},  $member_id,  "$name: same member_id as before") if @eps == 1;
}

sub range_ok {
    my ($resp, $name) = @_;
    keys_are($resp, [qw(header kvs more count)], $name);
    header_ok($resp->{header}, $name);
    is(ref $resp->{kvs}, 'ARRAY', "$name: kvs is an array ref");
    bool_ok($resp, 'more', $name);
    int_ok($resp, 'count', $name);
    kv_ok($_, "$name kv") for @{ $resp->{kvs} || [] };
}

sub keys_of { [ map { $_->{key} } @{ $_[0]{kvs} || [] } ] }
sub rel     { [ map { substr($_, length $P) } @{ $_[0] } ] }    # strip the prefix for readable diffs

my @write_revs;    # header revisions of successful writes, in issue order
sub wrote { push @write_revs, $_[0]{header}{revision} if $_[0]{header} }

sub put_ok {
    my ($key, $value, @opts) = @_;
    (my $shown = $key) =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    my $r = $caller->ok_call("put $shown", 'put', "$P$key", $value, @opts);
    wrote($r);
    return $r;
}

# ---------------------------------------------------------------------------------
# put / get basics

my $r = $caller->ok_call('put a', 'put', "${P}a", 'v1');
keys_are($r, ['header'], 'put response');
header_ok($r->{header}, 'put');
wrote($r);
my $rev_a1 = $r->{header}{revision};

$r = $caller->ok_call('get a', 'get', "${P}a");
range_ok($r, 'get a');
is(scalar @{ $r->{kvs} }, 1, 'get a: one kv');
kv_ok($r->{kvs}[0], 'get a kv', key => "${P}a", value => 'v1', create_revision => $rev_a1,
      mod_revision => $rev_a1, version => 1, lease => 0);
is($r->{count}, 1, 'get a: count 1');
is($r->{more},  0, 'get a: more 0');
cmp_ok($r->{header}{revision}, '>=', $rev_a1, 'get a: header revision is at least the put revision');

# prev_kv on an existing key
$r = $caller->ok_call('put a with prev_kv', 'put', "${P}a", 'v2', { prev_kv => 1 });
wrote($r);
keys_are($r, [qw(header prev_kv)], 'put with prev_kv on existing key');
kv_ok($r->{prev_kv}, 'prev_kv', key => "${P}a", value => 'v1', create_revision => $rev_a1,
      mod_revision => $rev_a1, version => 1, lease => 0);
my $rev_a2 = $r->{header}{revision};
cmp_ok($rev_a2, '>', $rev_a1, 'second put has a higher revision');

# prev_kv false, and prev_kv on a new key
$r = $caller->ok_call('put a with prev_kv => 0', 'put', "${P}a", 'v3', { prev_kv => 0 });
wrote($r);
keys_are($r, ['header'], 'put with prev_kv => 0');
my $rev_a3 = $r->{header}{revision};
$r = $caller->ok_call('put new key with prev_kv', 'put', "${P}b", 'vb', { prev_kv => 1 });
wrote($r);
keys_are($r, ['header'], 'put with prev_kv on a new key: no prev_kv');

$r = $caller->ok_call('get a after updates', 'get', "${P}a");
kv_ok($r->{kvs}[0], 'updated a', value => 'v3', version => 3, create_revision => $rev_a1, mod_revision => $rev_a3);

# historical reads
$r = $caller->ok_call('get a at revision of first put', 'get', "${P}a", { revision => $rev_a1 });
range_ok($r, 'historical get');
kv_ok($r->{kvs}[0], 'historical a', value => 'v1', version => 1, mod_revision => $rev_a1);
$r = $caller->ok_call('get a at revision of second put', 'get', "${P}a", { revision => $rev_a2 });
kv_ok($r->{kvs}[0], 'historical a (2)', value => 'v2', version => 2, mod_revision => $rev_a2);
$r = $caller->ok_call('get b before it existed', 'get', "${P}b", { revision => $rev_a1 });
is_deeply($r->{kvs}, [], 'historical read before creation: no kvs');
is($r->{count}, 0, 'historical read before creation: count 0');
$r = $caller->ok_call('get a with revision => undef (latest)', 'get', "${P}a", { revision => undef });
is($r->{kvs}[0]{value}, 'v3', 'revision => undef means latest');

# missing key
$r = $caller->ok_call('get missing key', 'get', "${P}missing");
range_ok($r, 'get missing');
is_deeply($r->{kvs}, [], 'missing key: kvs is []');
is($r->{count}, 0, 'missing key: count 0');
is($r->{more},  0, 'missing key: more 0');

# serializable
$r = $caller->ok_call('serializable get', 'get', "${P}a", { serializable => 1 });
range_ok($r, 'serializable get');
is($r->{kvs}[0]{value}, 'v3', 'serializable get returns the value');

# any option value that is not a hash reference is ignored
$r = $caller->ok_call('get with an array ref as options', 'get', "${P}a", [ prefix => 1 ]);
is_deeply(rel(keys_of($r)), ['a'], 'non-hash options are ignored');

# ---------------------------------------------------------------------------------
# ranges: prefix, range_end, limit, keys_only, count_only

put_ok("r/$_", "v$_") for qw(a b c d e);
put_ok('zz', 'after everything else of this prefix');

$r = $caller->ok_call('prefix get', 'get', "${P}r/", { prefix => 1 });
range_ok($r, 'prefix get');
is_deeply(rel(keys_of($r)), [qw(r/a r/b r/c r/d r/e)], 'prefix get: keys in key order');
is_deeply([ map { $_->{value} } @{ $r->{kvs} } ], [qw(va vb vc vd ve)], 'prefix get: values');
is($r->{count}, 5, 'prefix get: count 5');
is($r->{more},  0, 'prefix get: more 0');

$r = $caller->ok_call('prefix => 0 is a single-key get', 'get', "${P}r/", { prefix => 0 });
is_deeply($r->{kvs}, [], 'prefix => 0: exact key only (none)');

$r = $caller->ok_call('range_end', 'get', "${P}r/b", { range_end => "${P}r/d" });
range_ok($r, 'range_end get');
is_deeply(rel(keys_of($r)), [qw(r/b r/c)], 'range_end: half-open [b, d)');
is($r->{count}, 2, 'range_end: count 2');

$r = $caller->ok_call('range_end wins over prefix', 'get', "${P}r/b", { prefix => 1, range_end => "${P}r/c" });
is_deeply(rel(keys_of($r)), ['r/b'], 'range_end takes precedence over prefix');

$r = $caller->ok_call('range_end => undef with prefix', 'get', "${P}r/", { prefix => 1, range_end => undef });
is(scalar @{ $r->{kvs} }, 5, 'range_end => undef is "not given": prefix applies');

$r = $caller->ok_call('range_end "\0"', 'get', "${P}r/c", { range_end => "\0", limit => 3 });
is_deeply(rel(keys_of($r)), [qw(r/c r/d r/e)], 'range_end "\0": all keys >= key, in key order');
is($r->{more}, 1, 'range_end "\0": more keys beyond the limit');
cmp_ok($r->{count}, '>=', 4, 'range_end "\0": count includes keys after this prefix');

$r = $caller->ok_call('limit 2', 'get', "${P}r/", { prefix => 1, limit => 2 });
range_ok($r, 'limit get');
is_deeply(rel(keys_of($r)), [qw(r/a r/b)], 'limit 2: first two keys');
is($r->{more},  1, 'limit 2: more 1');
is($r->{count}, 5, 'limit 2: count is the total (5)');

$r = $caller->ok_call('limit 5', 'get', "${P}r/", { prefix => 1, limit => 5 });
is(scalar @{ $r->{kvs} }, 5, 'limit 5: five kvs');
is($r->{more}, 0, 'limit equal to the total: more 0');

$r = $caller->ok_call('limit 0', 'get', "${P}r/", { prefix => 1, limit => 0 });
is(scalar @{ $r->{kvs} }, 5, 'limit 0: no limit');
is($r->{more}, 0, 'limit 0: more 0');

$r = $caller->ok_call('limit undef', 'get', "${P}r/", { prefix => 1, limit => undef });
is(scalar @{ $r->{kvs} }, 5, 'limit undef: no limit');

$r = $caller->ok_call('keys_only', 'get', "${P}r/", { prefix => 1, keys_only => 1 });
range_ok($r, 'keys_only get');
is_deeply(rel(keys_of($r)), [qw(r/a r/b r/c r/d r/e)], 'keys_only: keys');
is_deeply([ map { $_->{value} } @{ $r->{kvs} } ], [ ('') x 5 ], 'keys_only: every value is ""');
is_deeply([ map { $_->{version} } @{ $r->{kvs} } ], [ (1) x 5 ], 'keys_only: metadata still present');

$r = $caller->ok_call('keys_only => 0', 'get', "${P}r/a", { keys_only => 0 });
is($r->{kvs}[0]{value}, 'va', 'keys_only => 0 returns values');

$r = $caller->ok_call('count_only', 'get', "${P}r/", { prefix => 1, count_only => 1 });
range_ok($r, 'count_only get');
is_deeply($r->{kvs}, [], 'count_only: kvs empty');
is($r->{count}, 5, 'count_only: count 5');
is($r->{more},  0, 'count_only: more 0');

# ---------------------------------------------------------------------------------
# prefix with trailing 0xFF bytes: range end = key without trailing 0xFF, last byte + 1

put_ok("ff\xfe",         'below');
put_ok("ff\xff",         'p0');
put_ok("ff\xff\x00",     'p1');
put_ok("ff\xff\xff",     'p2');
put_ok("ff\xff\xff\x01", 'p3');
put_ok("fg",             'above');
put_ok("fg\x00",         'above2');

$r = $caller->ok_call('prefix of a key ending in 0xFF', 'get', "${P}ff\xff", { prefix => 1 });
is_deeply(rel(keys_of($r)), [ "ff\xff", "ff\xff\x00", "ff\xff\xff", "ff\xff\xff\x01" ],
          'prefix "ff\xff": exactly the keys starting with it');
$r = $caller->ok_call('prefix of a key ending in two 0xFF', 'get', "${P}ff\xff\xff", { prefix => 1 });
is_deeply(rel(keys_of($r)), [ "ff\xff\xff", "ff\xff\xff\x01" ], 'prefix "ff\xff\xff": exactly the keys starting with it');
$r = $caller->ok_call('prefix "ff"', 'get', "${P}ff", { prefix => 1 });
is_deeply(rel(keys_of($r)), [ "ff\xfe", "ff\xff", "ff\xff\x00", "ff\xff\xff", "ff\xff\xff\x01" ],
          'prefix "ff": 0xFE and 0xFF continuations, not "fg"');

# a key made only of 0xFF bytes: the range end is "\0" (all keys >= key).  Keys in that
# region are outside the test prefix, so they carry the prefix after the 0xFF bytes.
my $ff2 = "\xff\xff$P";
my $ff3 = "\xff\xff\xff$P";
for my $k ($ff2, $ff3) {
    my $pr = $caller->ok_call('put a key in the 0xFF region', 'put', $k, 'high');
    wrote($pr);
}
$r = $caller->ok_call('prefix "\xff\xff"', 'get', "\xff\xff", { prefix => 1 });
my %got = map { $_ => 1 } @{ keys_of($r) };
ok($got{$ff2}, 'prefix of "\xff\xff" includes "\xff\xff..." keys');
ok($got{$ff3}, 'prefix of "\xff\xff" includes "\xff\xff\xff..." keys (range end "\0")');
ok(!grep({ $_ lt "\xff\xff" } keys %got), 'prefix of "\xff\xff": no key below "\xff\xff"');
$r = $caller->ok_call('prefix "\xff\xff\xff"', 'get', "\xff\xff\xff", { prefix => 1 });
%got = map { $_ => 1 } @{ keys_of($r) };
ok($got{$ff3},  'prefix of "\xff\xff\xff" includes its own key');
ok(!$got{$ff2}, 'prefix of "\xff\xff\xff" excludes "\xff\xff/..." (below the key)');
$r = $caller->ok_call('prefix "\xff"', 'get', "\xff", { prefix => 1, count_only => 1 });
cmp_ok($r->{count}, '>=', 2, 'prefix of "\xff" counts every key >= "\xff"');

# prefix with an empty key adds nothing: the server is asked for the empty key itself
{
    my $e = $caller->err_call('get("", {prefix => 1})', 'get', '', { prefix => 1 });
    is($e->{code},    3,                                'empty key: INVALID_ARGUMENT code');
    is($e->{status},  'INVALID_ARGUMENT',               'empty key: status');
    is($e->{message}, 'etcdserver: key is not provided', 'empty key: message');
    is($e->{source},  'range',                          'empty key: source range');
}

# ---------------------------------------------------------------------------------
# sorting.  Keys s/a s/b s/c written so that every target gives a different order:
#   create: b a c    mod: c b a    version: c a b    value: a c b    key: a b c

my %rev;
$rev{b1} = put_ok('s/b', 'x')->{header}{revision};
$rev{a1} = put_ok('s/a', 'x')->{header}{revision};
$rev{c1} = put_ok('s/c', '2')->{header}{revision};
$rev{b2} = put_ok('s/b', 'y')->{header}{revision};
$rev{b3} = put_ok('s/b', '3')->{header}{revision};
$rev{a2} = put_ok('s/a', '1')->{header}{revision};

$r = $caller->ok_call('sort setup check', 'get', "${P}s/", { prefix => 1 });
is_deeply([ map { [ substr($_->{key}, length $P), $_->{value}, $_->{version}, $_->{create_revision}, $_->{mod_revision} ] }
            @{ $r->{kvs} } ],
          [ [ 's/a', '1', 2, $rev{a1}, $rev{a2} ],
            [ 's/b', '3', 3, $rev{b1}, $rev{b3} ],
            [ 's/c', '2', 1, $rev{c1}, $rev{c1} ] ],
          'sort fixture: values, versions, create and mod revisions');

my %order = (
    key     => [qw(a b c)],
    create  => [qw(b a c)],
    mod     => [qw(c b a)],
    version => [qw(c a b)],
    value   => [qw(a c b)],
);
sub sorted_get {
    my ($name, %opts) = @_;
    my $resp = $caller->ok_call($name, 'get', "${P}s/", { prefix => 1, %opts });
    return [ map { substr($_, length "${P}s/") } @{ keys_of($resp) } ];
}
for my $target (qw(version create mod value)) {
    for my $spelling ($target, uc $target) {
        is_deeply(sorted_get("sort $spelling ascend", sort_target => $spelling, sort_order => 'ascend'),
                  $order{$target}, "sort_target $spelling, ascend");
        is_deeply(sorted_get("sort $spelling DESCEND", sort_target => $spelling, sort_order => 'DESCEND'),
                  [ reverse @{ $order{$target} } ], "sort_target $spelling, DESCEND");
    }
    # a target without a (valid) order: etcd sorts ascending by that target
    is_deeply(sorted_get("sort $target without order", sort_target => $target),
              $order{$target}, "sort_target $target without sort_order: ascending by $target");
}
is_deeply(sorted_get('sort descend', sort_order => 'descend'), [qw(c b a)], 'sort_order descend: by key');
is_deeply(sorted_get('sort DESCEND', sort_order => 'DESCEND'), [qw(c b a)], 'sort_order DESCEND: by key');
is_deeply(sorted_get('sort ascend',  sort_order => 'ascend'),  [qw(a b c)], 'sort_order ascend: by key');
is_deeply(sorted_get('sort ASCEND',  sort_order => 'ASCEND'),  [qw(a b c)], 'sort_order ASCEND: by key');
for my $t ('key', 'KEY', 'bogus') {
    is_deeply(sorted_get("sort target $t descend", sort_target => $t, sort_order => 'descend'),
              [qw(c b a)], "sort_target '$t' means by key");
}
# only the exact spellings are recognised: anything else means "no sorting" (key order)
for my $o ('Descend', 'desc', 'down', '') {
    is_deeply(sorted_get("sort order '$o'", sort_order => $o), [qw(a b c)], "sort_order '$o' is not recognised");
}
{
    my $resp = $caller->ok_call('sort descend with limit', 'get', "${P}s/", { prefix => 1, sort_order => 'descend', limit => 1 });
    is_deeply(rel(keys_of($resp)), ['s/c'], 'sort descend + limit 1: last key');
    is($resp->{more},  1, 'sort descend + limit 1: more 1');
    is($resp->{count}, 3, 'sort descend + limit 1: count 3');
}

# revision filters (server side, applied to the same fixture)
is_deeply(sorted_get('min_mod_revision', min_mod_revision => $rev{b3}), [qw(a b)], 'min_mod_revision');
is_deeply(sorted_get('max_mod_revision', max_mod_revision => $rev{c1}), ['c'],     'max_mod_revision');
is_deeply(sorted_get('min_create_revision', min_create_revision => $rev{a1}), [qw(a c)], 'min_create_revision');
is_deeply(sorted_get('max_create_revision', max_create_revision => $rev{a1}), [qw(a b)], 'max_create_revision');
is_deeply(sorted_get('mod window', min_mod_revision => $rev{c1}, max_mod_revision => $rev{b3}), [qw(b c)],
          'min_mod_revision + max_mod_revision');
is_deeply(sorted_get('filters undef', min_mod_revision => undef, max_create_revision => undef), [qw(a b c)],
          'undef filters are "not given"');

# ---------------------------------------------------------------------------------
# put options: lease, ignore_value, ignore_lease

$r = put_ok('leased', 'v', { lease => 0 });
keys_are($r, ['header'], 'put with lease => 0');
$r = $caller->ok_call('get key put with lease 0', 'get', "${P}leased");
kv_ok($r->{kvs}[0], 'lease 0 kv', value => 'v', lease => 0);
put_ok('leased', 'v2', { lease => undef });

{
    my $e = $caller->err_call('put with an unknown lease', 'put', "${P}badlease", 'v', { lease => 1234567890123 });
    keys_are($e, [qw(code status message source retryable)], 'error hash');
    int_ok($e, 'code', 'error hash');
    bool_ok($e, 'retryable', 'error hash');
    is($e->{code},      5,                                       'unknown lease: code 5');
    is($e->{status},    'NOT_FOUND',                             'unknown lease: status');
    is($e->{message},   'etcdserver: requested lease not found', 'unknown lease: message');
    is($e->{source},    'put',                                   'unknown lease: source');
    is($e->{retryable}, 0,                                       'unknown lease: not retryable');
    $r = $caller->ok_call('key with unknown lease was not written', 'get', "${P}badlease");
    is($r->{count}, 0, 'failed put wrote nothing');
}

# ignore_value keeps the stored value
$r = put_ok('iv', 'original');
my $iv_create = $r->{header}{revision};
$r = put_ok('iv', '', { ignore_value => 1, prev_kv => 1 });
kv_ok($r->{prev_kv}, 'ignore_value prev_kv', value => 'original', version => 1);
my $iv_mod = $r->{header}{revision};
$r = $caller->ok_call('get after ignore_value', 'get', "${P}iv");
kv_ok($r->{kvs}[0], 'after ignore_value', value => 'original', version => 2,
      create_revision => $iv_create, mod_revision => $iv_mod);
{
    my $e = $caller->err_call('ignore_value on a missing key', 'put', "${P}iv-missing", '', { ignore_value => 1 });
    is($e->{code},    3,                         'ignore_value on missing key: code 3');
    is($e->{status},  'INVALID_ARGUMENT',        'ignore_value on missing key: status');
    is($e->{message}, 'etcdserver: key not found', 'ignore_value on missing key: message');
    is($e->{source},  'put',                     'ignore_value on missing key: source');
    $e = $caller->err_call('ignore_value with a value', 'put', "${P}iv", 'new value', { ignore_value => 1 });
    is($e->{code},    3,                            'ignore_value with a value: code 3');
    is($e->{message}, 'etcdserver: value is provided', 'ignore_value with a value: message');
}
put_ok('iv', 'replaced', { ignore_value => 0 });
$r = $caller->ok_call('get after ignore_value => 0', 'get', "${P}iv");
is($r->{kvs}[0]{value}, 'replaced', 'ignore_value => 0 writes the value');

# ignore_lease keeps the stored lease (0 here) and writes the value
put_ok('il', 'one');
$r = put_ok('il', 'two', { ignore_lease => 1 });
keys_are($r, ['header'], 'put with ignore_lease');
$r = $caller->ok_call('get after ignore_lease', 'get', "${P}il");
kv_ok($r->{kvs}[0], 'after ignore_lease', value => 'two', version => 2, lease => 0);
{
    my $e = $caller->err_call('ignore_lease on a missing key', 'put', "${P}il-missing", 'v', { ignore_lease => 1 });
    is($e->{code},    3,                           'ignore_lease on missing key: code 3');
    is($e->{status},  'INVALID_ARGUMENT',          'ignore_lease on missing key: status');
    is($e->{message}, 'etcdserver: key not found', 'ignore_lease on missing key: message');
    is($e->{source},  'put',                       'ignore_lease on missing key: source');
    $e = $caller->err_call('ignore_lease with a lease', 'put', "${P}il", 'v', { ignore_lease => 1, lease => 12345 });
    is($e->{code},    3,                             'ignore_lease with a lease: code 3');
    is($e->{message}, 'etcdserver: lease is provided', 'ignore_lease with a lease: message');
}

# ---------------------------------------------------------------------------------
# delete

$r = $caller->ok_call('delete a', 'delete', "${P}a");
wrote($r);
keys_are($r, [qw(header deleted)], 'delete response');
header_ok($r->{header}, 'delete');
int_ok($r, 'deleted', 'delete');
is($r->{deleted}, 1, 'delete a: deleted 1');
$r = $caller->ok_call('get deleted key', 'get', "${P}a");
is($r->{count}, 0, 'deleted key is gone');

$r = $caller->ok_call('delete missing key with prev_kv', 'delete', "${P}a", { prev_kv => 1 });
keys_are($r, [qw(header deleted)], 'delete of nothing with prev_kv: no prev_kvs');
is($r->{deleted}, 0, 'delete missing key: deleted 0 (not an error)');

$r = $caller->ok_call('delete prefix with prev_kv', 'delete', "${P}r/", { prefix => 1, prev_kv => 1 });
wrote($r);
keys_are($r, [qw(header deleted prev_kvs)], 'delete with prev_kv');
is($r->{deleted}, 5, 'delete prefix: deleted 5');
is(ref $r->{prev_kvs}, 'ARRAY', 'prev_kvs is an array ref');
kv_ok($_, 'deleted prev kv') for @{ $r->{prev_kvs} || [] };
is_deeply([ sort map { substr($_->{key}, length $P) . '=' . $_->{value} } @{ $r->{prev_kvs} || [] } ],
          [qw(r/a=va r/b=vb r/c=vc r/d=vd r/e=ve)], 'prev_kvs hold the deleted keys and values');
$r = $caller->ok_call('get after prefix delete', 'get', "${P}r/", { prefix => 1, count_only => 1 });
is($r->{count}, 0, 'prefix delete removed everything under the prefix');

put_ok("d/$_", "d$_") for 1 .. 4;
$r = $caller->ok_call('delete with range_end', 'delete', "${P}d/2", { range_end => "${P}d/4" });
wrote($r);
keys_are($r, [qw(header deleted)], 'delete without prev_kv: no prev_kvs');
is($r->{deleted}, 2, 'delete [d/2, d/4): deleted 2');
$r = $caller->ok_call('get after range delete', 'get', "${P}d/", { prefix => 1 });
is_deeply(rel(keys_of($r)), [qw(d/1 d/4)], 'range delete left d/1 and d/4');

$r = $caller->ok_call('delete with range_end over prefix', 'delete', "${P}d/", { prefix => 1, range_end => "${P}d/2", prev_kv => 1 });
wrote($r);
is($r->{deleted}, 1, 'range_end takes precedence over prefix in delete');
is_deeply(rel([ map { $_->{key} } @{ $r->{prev_kvs} || [] } ]), ['d/1'], 'prev_kvs of the range delete');

$r = $caller->ok_call('delete prefix ending in 0xFF', 'delete', "${P}ff\xff", { prefix => 1, prev_kv => 1 });
wrote($r);
is($r->{deleted}, 4, 'delete prefix "ff\xff": deleted 4');
is_deeply([ sort @{ rel([ map { $_->{key} } @{ $r->{prev_kvs} || [] } ]) } ],
          [ sort("ff\xff", "ff\xff\x00", "ff\xff\xff", "ff\xff\xff\x01") ], 'delete prefix "ff\xff": the right keys');
$r = $caller->ok_call('neighbours survived', 'get', "${P}f", { prefix => 1 });
is_deeply(rel(keys_of($r)), [ "ff\xfe", 'fg', "fg\x00" ], 'keys outside the 0xFF prefix survived');

$r = $caller->ok_call('delete with prev_kv => 0', 'delete', "${P}fg", { prev_kv => 0 });
wrote($r);
keys_are($r, [qw(header deleted)], 'delete with prev_kv => 0');
is($r->{deleted}, 1, 'delete fg: deleted 1');

# ---------------------------------------------------------------------------------
# response hashes are plain, independent hashes: changing one changes no other

{
    $caller->ok_call('own put', 'put', "${P}own", 'v1');
    my @r = map { $caller->ok_call("own get $_", 'get', "${P}own") } 1 .. 3;
    my ($a, $b) = @r;
    isnt($a->{kvs}[0], $b->{kvs}[0], 'each response has its own kv hash');
    isnt(\$a->{kvs}[0]{value}, \$b->{kvs}[0]{value}, '... and its own value scalars');
    $a->{kvs}[0]{value} = 'changed';
    $a->{kvs}[0]{mod_revision}++;
    delete $a->{kvs}[0]{lease};
    $a->{kvs}[0]{extra} = 1;
    delete $a->{header}{raft_term};
    $a->{header}{revision} = -1;
    for my $r ($b, $r[2]) {
        is($r->{kvs}[0]{value}, 'v1', 'another response keeps its value');
        keys_are($r->{kvs}[0], [qw(key value create_revision mod_revision version lease)], 'and its keys');
        keys_are($r->{header}, [qw(cluster_id member_id revision raft_term)], 'and its header');
        cmp_ok($r->{header}{revision}, '>', 0, 'and its header revision');
    }
    is($r[2]{kvs}[0]{mod_revision}, $b->{kvs}[0]{mod_revision}, 'mod_revision unchanged elsewhere');
    my %copy = %{ $b->{kvs}[0] };
    is(scalar(keys %copy), 6, 'a kv hash copies like any hash');
    is(join(',', map { defined $_ ? 'd' : 'u' } values %copy), 'd,d,d,d,d,d', 'every value is defined');
}

# ---------------------------------------------------------------------------------
# revisions increase with every write

{
    my @sorted = sort { $a <=> $b } @write_revs;
    is_deeply(\@write_revs, \@sorted, 'write revisions never go down');
    my %seen;
    my @dups = grep { $seen{$_}++ } @write_revs;
    is_deeply(\@dups, [], 'every write got its own revision');
    cmp_ok(scalar(@write_revs), '>', 40, 'enough writes were checked');
}

# ---------------------------------------------------------------------------------
# cleanup, and every callback ran exactly once

$caller->ok_call('cleanup prefix', 'delete', $P, { prefix => 1 });
$caller->ok_call('cleanup 0xFF key', 'delete', $_) for $ff2, $ff3;

EtcdTest::run_until(0.3, sub { 0 });
is_deeply([ map { "$_->{what}:$_->{n}" } grep { $_->{n} != 1 } $caller->records ], [], 'every callback was called exactly once');

done_testing;

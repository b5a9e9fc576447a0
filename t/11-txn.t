use strict;
use warnings;
use Test::More;
use B ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "txn": call forms, compares, ops, response shapes, errors.
# The implementation is meant to be warning-free (its parsing of every call form
# included), so every warning is collected.

my @warnings;
$SIG{__WARN__} = sub { push @warnings, join '', @_ };

my @eps    = EtcdTest::endpoints();
my $P      = EtcdTest::prefix();
my $client = EV::Etcd->new(endpoints => [@eps], timeout => 10);

# ---------------------------------------------------------------------------------
# helpers

# call / ok_call / err_call / start: t/lib/EtcdTest/Caller.pm (EtcdTest::Caller);
# 20 s per callback, exactly two callback arguments, every record checked for
# "exactly once" at the end; EtcdTest::Caller::CB marks where a callback that is
# not the last argument goes (txn(callback => $cb, ...))
my $caller = EtcdTest::Caller->new($client, timeout => 20);
my $CB     = EtcdTest::Caller::CB;

sub flags_of { B::svref_2object($_[0])->FLAGS }
sub int_ok {
    my ($h, $k, $name) = @_;
    unless (exists $h->{$k}) { fail("$name: $k present"); return }
    ok(!ref($h->{$k}) && defined($h->{$k}) && (flags_of(\$h->{$k}) & B::SVf_IOK) && $h->{$k} =~ /^-?\d+\z/,
       "$name: $k is a Perl integer");
}
sub bool_ok {
    my ($h, $k, $name) = @_;
    unless (exists $h->{$k}) { fail("$name: $k present"); return }
    ok(!ref($h->{$k}) && defined($h->{$k}) && (flags_of(\$h->{$k}) & B::SVf_IOK)
       && ($h->{$k} eq '0' || $h->{$k} eq '1'), "$name: $k is the integer 0 or 1");
}
sub keys_are {
    my ($h, $expected, $name) = @_;
    is_deeply([ sort keys %{ $h || {} } ], [ sort @$expected ], "$name: keys are exactly (@{[ sort @$expected ]})");
}

sub top_ok {
    my ($resp, $name) = @_;
    keys_are($resp, [qw(header succeeded responses)], $name);
    keys_are($resp->{header}, [qw(cluster_id member_id revision raft_term)], "$name header");
    int_ok($resp->{header}, $_, "$name header") for qw(cluster_id member_id revision raft_term);
    ok($resp->{header}{$_} > 0, "$name header: $_ > 0") for qw(cluster_id member_id revision raft_term);
    bool_ok($resp, 'succeeded', $name);
    is(ref $resp->{responses}, 'ARRAY', "$name: responses is an array ref");
}

# sub-response header: only revision is filled in
sub sub_header_ok {
    my ($h, $top_rev, $name) = @_;
    keys_are($h, [qw(cluster_id member_id revision raft_term)], "$name header");
    int_ok($h, $_, "$name header") for qw(cluster_id member_id revision raft_term);
    is($h->{$_}, 0, "$name header: $_ is 0") for qw(cluster_id member_id raft_term);
    ok($h->{revision} > 0 && $h->{revision} <= $top_rev, "$name header: revision is set (0 < rev <= txn revision)");
}

sub kv_ok {
    my ($kv, $name, %want) = @_;
    keys_are($kv, [qw(key value create_revision mod_revision version lease)], $name);
    ok(!utf8::is_utf8($kv->{$_}), "$name: $_ is bytes") for qw(key value);
    int_ok($kv, $_, $name) for qw(create_revision mod_revision version lease);
    is($kv->{$_}, $want{$_}, "$name: $_") for sort keys %want;
}

sub value_of {
    my ($key) = @_;
    my $r = $caller->ok_call("get $key", 'get', $key);
    return @{ $r->{kvs} || [] } ? $r->{kvs}[0]{value} : undef;
}

# ---------------------------------------------------------------------------------
# fixture: X has version 2, value 'm', lease 0

my $X = "${P}t/x";
my $r = $caller->ok_call('put X', 'put', $X, 'first');
my $x_create = $r->{header}{revision};
$r = $caller->ok_call('put X again', 'put', $X, 'm');
my $x_mod = $r->{header}{revision};
$caller->ok_call('put Z', 'put', "${P}t/z", 'zz');

# ---------------------------------------------------------------------------------
# positional form, success branch, every op type, response shapes

$r = $caller->ok_call('positional txn, success branch', 'txn',
    [ { key => $X, target => 'value', result => '=', value => 'm' } ],
    [ { request_put => { key => "${P}t/y", value => 'y1' } },
      { request_range => { key => $X } },
      { request_delete_range => { key => "${P}t/z" } } ],
    [ { request_range => { key => $X } } ]);
top_ok($r, 'positional txn');
is($r->{succeeded}, 1, 'compare held: succeeded 1');
is(scalar @{ $r->{responses} || [] }, 3, 'three responses for three success ops');
{
    my $top_rev = $r->{header}{revision};
    my ($put, $range, $del) = @{ $r->{responses} || [] };
    keys_are($put,   ['response_put'],          'first response');
    keys_are($range, ['response_range'],        'second response');
    keys_are($del,   ['response_delete_range'], 'third response');

    keys_are($put->{response_put}, ['header'], 'response_put');
    sub_header_ok($put->{response_put}{header}, $top_rev, 'response_put');
    is($put->{response_put}{header}{revision}, $top_rev, 'response_put: revision of the write');

    my $rr = $range->{response_range} || {};
    keys_are($rr, [qw(header kvs more count)], 'response_range');
    sub_header_ok($rr->{header}, $top_rev, 'response_range');
    is(scalar @{ $rr->{kvs} || [] }, 1, 'response_range: one kv');
    kv_ok($rr->{kvs}[0], 'response_range kv', key => $X, value => 'm', version => 2,
          create_revision => $x_create, mod_revision => $x_mod, lease => 0);
    int_ok($rr, 'count', 'response_range');
    bool_ok($rr, 'more', 'response_range');
    is($rr->{count}, 1, 'response_range: count 1');
    is($rr->{more},  0, 'response_range: more 0');

    my $dr = $del->{response_delete_range} || {};
    keys_are($dr, [qw(header deleted prev_kvs)], 'response_delete_range (prev_kvs always present)');
    sub_header_ok($dr->{header}, $top_rev, 'response_delete_range');
    int_ok($dr, 'deleted', 'response_delete_range');
    is($dr->{deleted}, 1, 'response_delete_range: deleted 1');
    is_deeply($dr->{prev_kvs}, [], 'response_delete_range: prev_kvs is []');
}
is(value_of("${P}t/y"), 'y1', 'txn put was applied');
is(value_of("${P}t/z"), undef, 'txn delete was applied');

# failure branch, op aliases, put with lease 0, range_end inside ops
$caller->ok_call("put t/r/$_", 'put', "${P}t/r/$_", "r$_") for qw(a b c d);
$r = $caller->ok_call('positional txn, failure branch with aliases', 'txn',
    [ { key => $X, target => 'value', value => 'not m' } ],
    [ { put => { key => "${P}t/y", value => 'should not happen' } } ],
    [ { range  => { key => "${P}t/r/a", range_end => "${P}t/r/c" } },
      { put    => { key => "${P}t/y", value => 'y2', lease => 0 } },
      { delete => { key => "${P}t/r/c", range_end => "${P}t/r/z" } },
      { delete => { key => "${P}t/nothing" } } ]);
top_ok($r, 'failure-branch txn');
is($r->{succeeded}, 0, 'compare failed: succeeded 0');
is_deeply([ map { join ',', keys %$_ } @{ $r->{responses} || [] } ],
          [qw(response_range response_put response_delete_range response_delete_range)],
          'failure ops ran in order');
{
    my $rr = $r->{responses}[0]{response_range} || {};
    is_deeply([ map { $_->{key} } @{ $rr->{kvs} || [] } ], [ "${P}t/r/a", "${P}t/r/b" ], 'range alias with range_end');
    is_deeply([ map { $_->{value} } @{ $rr->{kvs} || [] } ], [qw(ra rb)], 'range alias values');
    is($rr->{count}, 2, 'range alias: count 2');
    my $d1 = $r->{responses}[2]{response_delete_range} || {};
    is($d1->{deleted}, 2, 'delete alias with range_end: deleted 2');
    is_deeply($d1->{prev_kvs}, [], 'delete alias: prev_kvs present and empty');
    my $d2 = $r->{responses}[3]{response_delete_range} || {};
    keys_are($d2, [qw(header deleted prev_kvs)], 'delete of nothing inside txn');
    is($d2->{deleted}, 0, 'delete of nothing inside txn: deleted 0');
    is_deeply($d2->{prev_kvs}, [], 'delete of nothing inside txn: prev_kvs []');
}
$r = $caller->ok_call('get y', 'get', "${P}t/y");
kv_ok($r->{kvs}[0], 'y after failure branch', value => 'y2', version => 2, lease => 0);
$r = $caller->ok_call('get t/r', 'get', "${P}t/r/", { prefix => 1 });
is_deeply([ map { $_->{key} } @{ $r->{kvs} } ], [ "${P}t/r/a", "${P}t/r/b" ], 'txn range delete removed c and d');

# a read-only txn: the range sub-response carries the txn revision
$r = $caller->ok_call('read-only txn', 'txn', [], [ { request_range => { key => $X } } ], []);
is($r->{succeeded}, 1, 'empty compare list: succeeded 1');
is($r->{responses}[0]{response_range}{header}{revision}, $r->{header}{revision},
   'read-only txn: range header revision equals the txn revision');

# a writing txn raises the revision
{
    my $before = $caller->ok_call('get X for revision', 'get', $X)->{header}{revision};
    $r = $caller->ok_call('writing txn', 'txn', [], [ { request_put => { key => "${P}t/w", value => 'w' } } ], []);
    cmp_ok($r->{header}{revision}, '>', $before, 'a writing txn increases the revision');
    is($r->{responses}[0]{response_put}{header}{revision}, $r->{header}{revision}, 'put sub-response revision');
    $r = $caller->ok_call('get w', 'get', "${P}t/w");
    kv_ok($r->{kvs}[0], 'txn-written key', value => 'w', version => 1, lease => 0);
}

# ---------------------------------------------------------------------------------
# the other call forms

{
    $r = $caller->ok_call('named form with trailing callback', 'txn',
                          compare => [ { key => $X, target => 'version', version => 2 } ],
                          success => [ { request_range => { key => $X } } ],
                          failure => []);
    top_ok($r, 'named form');
    is($r->{succeeded}, 1, 'named form: succeeded');
    is($r->{responses}[0]{response_range}{kvs}[0]{value}, 'm', 'named form: success op ran');

    $r = $caller->ok_call('named form with callback => $cb', 'txn',
                          compare  => [ { key => $X, target => 'version', version => 3 } ],
                          success  => [],
                          failure  => [ { request_range => { key => $X } } ],
                          callback => $CB);
    top_ok($r, 'named form, callback =>');
    is($r->{succeeded}, 0, 'callback => form: compare failed');
    is($r->{responses}[0]{response_range}{kvs}[0]{value}, 'm', 'callback => form: failure op ran');

    # key order does not matter in the named form
    $r = $caller->ok_call('named form, keys in another order', 'txn',
                          failure => [ { range => { key => $X } } ], callback => $CB,
                          compare => [ { key => $X, value => 'nope' } ]);
    is($r->{succeeded}, 0, 'named form, other order: compare failed');
    is(scalar @{ $r->{responses} || [] }, 1, 'named form, other order: failure op ran');

    # a trailing code ref wins over callback =>
    my $loser = { n => 0 };
    $r = $caller->ok_call('trailing code ref and callback =>', 'txn',
                          compare => [], callback => sub { $loser->{n}++ });
    is($r->{succeeded}, 1, 'trailing callback got the result');
    EtcdTest::run_until(0.3, sub { 0 });
    is($loser->{n}, 0, 'the callback => value was not called');

    # missing lists default to empty
    $r = $caller->ok_call('txn($cb)', 'txn');
    top_ok($r, 'txn($cb)');
    is($r->{succeeded}, 1, 'txn($cb): empty txn succeeds');
    is_deeply($r->{responses}, [], 'txn($cb): no responses');

    $r = $caller->ok_call('txn(callback => $cb)', 'txn', callback => $CB);
    is($r->{succeeded}, 1, 'txn(callback => $cb): empty txn succeeds');

    $r = $caller->ok_call('txn([], [], [], $cb)', 'txn', [], [], []);
    top_ok($r, 'empty positional txn');
    is($r->{succeeded}, 1, 'empty positional txn succeeds');
    is_deeply($r->{responses}, [], 'empty positional txn: no responses');

    # ill-formed: neither form; runs an empty txn
    $r = $caller->ok_call('txn([...], [...], $cb) runs an empty txn', 'txn',
                          [ { key => $X, value => 'nope' } ], [ { request_put => { key => "${P}t/ill", value => 'x' } } ]);
    is($r->{succeeded}, 1, 'ill-formed call: empty txn succeeded');
    is_deeply($r->{responses}, [], 'ill-formed call: no ops ran');
    is(value_of("${P}t/ill"), undef, 'ill-formed call: the put in the junk list did not run');

    # lists that are not array refs are empty
    $r = $caller->ok_call('non-array-ref lists are treated as empty', 'txn',
                          compare => { key => $X, value => 'nope' }, success => 'junk',
                          failure => { request_put => { key => "${P}t/ill", value => 'x' } });
    is($r->{succeeded}, 1, 'non-array compare list: no compare, succeeded');
    is_deeply($r->{responses}, [], 'non-array op lists: no ops');
    is(value_of("${P}t/ill"), undef, 'non-array failure list did not run');

    # positional form with undef lists
    $r = $caller->ok_call('txn([], undef, undef, $cb)', 'txn', [], undef, undef);
    is($r->{succeeded}, 1, 'positional form with undef lists succeeds');
}

# ---------------------------------------------------------------------------------
# compares: every target with every result operator (run concurrently)

my %actual = (version => 2, create => $x_create, mod => $x_mod, value => 'm', lease => 0);
my %field  = (version => 'version', create => 'create_revision', mod => 'mod_revision', value => 'value', lease => 'lease');
my %operands = (
    version => [ 1, 2, 3 ],
    create  => [ $x_create - 1, $x_create, $x_create + 1 ],
    mod     => [ $x_mod - 1, $x_mod, $x_mod + 1 ],
    value   => [ 'a', 'm', 'z' ],
    lease   => [ -1, 0, 1 ],
);
my %holds = (
    '='         => sub { $_[0] == 0 }, EQUAL     => sub { $_[0] == 0 },
    '!='        => sub { $_[0] != 0 }, NOT_EQUAL => sub { $_[0] != 0 },
    '<'         => sub { $_[0] < 0 },  LESS      => sub { $_[0] < 0 },
    '>'         => sub { $_[0] > 0 },  GREATER   => sub { $_[0] > 0 },
);
my @matrix;
for my $target (sort keys %actual) {
    for my $operand (@{ $operands{$target} }) {
        my $cmp = $target eq 'value' ? ($actual{$target} cmp $operand) : ($actual{$target} <=> $operand);
        for my $op (sort keys %holds) {
            my $spelled = $op =~ /^[A-Z]/ ? uc $target : $target;
            my $rec = $caller->start('txn', [ { key => $X, target => $spelled, result => $op, $field{$target} => $operand } ],
                                     [], []);
            push @matrix, [ $rec, $holds{$op}->($cmp) ? 1 : 0, "compare $spelled: actual $actual{$target} $op $operand" ];
        }
    }
}
EtcdTest::run_until(20, sub { !grep { !$_->[0]{n} } @matrix })
    or fail('compare matrix: callback within 20 s');
for my $m (@matrix) {
    my ($rec, $expect, $name) = @$m;
    if ($rec->{err} || !$rec->{resp}) { fail("$name: error") ; diag(explain($rec->{err})); next }
    is($rec->{resp}{succeeded}, $expect, "$name => $expect");
}

# missing keys compare as version/create/mod/lease 0; a value compare on a missing key fails
{
    my $M = "${P}t/missing";
    my @cases = (
        [ { key => $M, target => 'version', version => 0 },                 1, 'missing key has version 0' ],
        [ { key => $M, target => 'create', create_revision => 0 },          1, 'missing key has create_revision 0' ],
        [ { key => $M, target => 'mod', mod_revision => 0 },                1, 'missing key has mod_revision 0' ],
        [ { key => $M, target => 'version', result => '>', version => 0 },  0, 'missing key is not newer than version 0' ],
        [ { key => $M, target => 'value', value => '' },                    0, 'a value compare on a missing key fails' ],
    );
    for my $c (@cases) {
        my ($cmp, $expect, $name) = @$c;
        $r = $caller->ok_call($name, 'txn', [$cmp], [], []);
        is($r->{succeeded}, $expect, "$name => $expect");
    }
}

# target inference from the operand field, result defaulting to "="
{
    my @cases = (
        [ { key => $X, version => 2 },                  1, 'version inferred (true)' ],
        [ { key => $X, version => 1 },                  0, 'version inferred (false)' ],
        [ { key => $X, create_revision => $x_create },  1, 'create inferred (true)' ],
        [ { key => $X, create_revision => $x_mod },     0, 'create inferred (false)' ],
        [ { key => $X, mod_revision => $x_mod },        1, 'mod inferred (true)' ],
        [ { key => $X, mod_revision => $x_create },     0, 'mod inferred (false)' ],
        [ { key => $X, value => 'm' },                  1, 'value inferred (true)' ],
        [ { key => $X, value => 'first' },              0, 'value inferred (false)' ],
        [ { key => $X, lease => 0 },                    1, 'lease inferred (true)' ],
        [ { key => $X, lease => 7 },                    0, 'lease inferred (false)' ],
        [ { key => $X, result => '>', version => 1 },   1, 'inferred target with an explicit result' ],
        # several operand fields: the last in the order version, create, mod, value, lease wins
        [ { key => $X, version => 99, value => 'm' },                    1, 'value wins over version' ],
        [ { key => $X, value => 'nope', lease => 0 },                    1, 'lease wins over value' ],
        [ { key => $X, version => 2, create_revision => $x_create + 9 }, 0, 'create wins over version' ],
        [ { key => $X, create_revision => $x_create, mod_revision => $x_mod + 9 }, 0, 'mod wins over create' ],
        # an explicit target together with operand fields (the last field is the operand)
        [ { key => $X, target => 'VALUE', version => 99, value => 'm' },      1, 'explicit target VALUE' ],
        [ { key => $X, target => 'value', create_revision => 1, value => 'x' }, 0, 'explicit target value (false)' ],
    );
    for my $c (@cases) {
        my ($cmp, $expect, $name) = @$c;
        $r = $caller->ok_call($name, 'txn', [$cmp], [], []);
        is($r->{succeeded}, $expect, "$name => $expect");
    }
}

# several compares: all must hold
$r = $caller->ok_call('two compares, both hold', 'txn',
    [ { key => $X, target => 'version', version => 2 }, { key => $X, target => 'value', value => 'm' } ], [], []);
is($r->{succeeded}, 1, 'two true compares: succeeded');
$r = $caller->ok_call('two compares, one fails', 'txn',
    [ { key => $X, target => 'version', version => 2 }, { key => $X, target => 'value', value => 'x' } ], [], []);
is($r->{succeeded}, 0, 'one false compare: failed');

# ---------------------------------------------------------------------------------
# errors

{
    my $e = $caller->err_call('duplicate key in one txn', 'txn', [],
        [ { request_put => { key => "${P}t/dup", value => 1 } }, { request_put => { key => "${P}t/dup", value => 2 } } ], []);
    keys_are($e, [qw(code status message source retryable)], 'error hash');
    int_ok($e, 'code', 'error hash');
    bool_ok($e, 'retryable', 'error hash');
    is($e->{code},      3,                                                 'duplicate key: code 3');
    is($e->{status},    'INVALID_ARGUMENT',                                'duplicate key: status');
    is($e->{message},   'etcdserver: duplicate key given in txn request', 'duplicate key: message');
    is($e->{source},    'txn',                                             'duplicate key: source');
    is($e->{retryable}, 0,                                                 'duplicate key: not retryable');
    is(value_of("${P}t/dup"), undef, 'rejected txn wrote nothing');

    for my $bad ([ 'an unknown op name', { bogus => { key => $X } } ],
                 [ 'an empty op hash',   {} ],
                 [ 'a non-hash op',      'junk' ]) {
        my ($what, $op) = @$bad;
        $e = $caller->err_call("txn with $what", 'txn', [],
                               [ { request_put => { key => "${P}t/never", value => 'x' } }, $op ], []);
        is($e->{code},    3,                           "$what: INVALID_ARGUMENT");
        is($e->{status},  'INVALID_ARGUMENT',          "$what: status");
        is($e->{message}, 'etcdserver: key not found', "$what: message");
        is($e->{source},  'txn',                       "$what: source");
    }
    is(value_of("${P}t/never"), undef, 'a txn with a rejected op wrote nothing');
}

# ---------------------------------------------------------------------------------
# POD "txn": operations take every option of the method of the same kind, and
# nest; each gives what the plain method gives for the same options.

{
    my $T = "${P}opt/";
    $caller->ok_call("put $T$_", 'put', "$T$_", "v$_") for 1 .. 4;
    my %range_opts = (
        'prefix'                  => { prefix => 1 },
        'prefix, limit 2'         => { prefix => 1, limit => 2 },
        'descending by key'       => { prefix => 1, sort_order => 'descend', sort_target => 'key' },
        'keys_only'               => { prefix => 1, keys_only => 1 },
        'count_only'              => { prefix => 1, count_only => 1 },
        'serializable'            => { prefix => 1, serializable => 1 },
        'min_mod_revision'        => { prefix => 1, min_mod_revision => 1 },
    );
    for my $what (sort keys %range_opts) {
        my $o = $range_opts{$what};
        my $plain = $caller->ok_call("get ($what)", 'get', $T, $o);
        my $t = $caller->ok_call("txn range ($what)", 'txn', [], [ { request_range => { key => $T, %$o } } ], []);
        my $in = $t->{responses}[0]{response_range} || {};
        is_deeply([ map { [ $_->{key}, $_->{value} ] } @{ $in->{kvs} || [] } ],
                  [ map { [ $_->{key}, $_->{value} ] } @{ $plain->{kvs} || [] } ], "range ($what): same kvs as get");
        is($in->{count}, $plain->{count}, "range ($what): same count");
        is($in->{more} ? 1 : 0, $plain->{more} ? 1 : 0, "range ($what): same more");
    }
    my $rev = $caller->ok_call('get for a revision', 'get', "${T}1")->{header}{revision};
    $caller->ok_call('put after that revision', 'put', "${T}1", 'later');
    my $t = $caller->ok_call('txn range at a revision', 'txn', [],
                             [ { request_range => { key => "${T}1", revision => $rev } } ], []);
    is($t->{responses}[0]{response_range}{kvs}[0]{value}, 'v1', 'range with revision: the value at that revision');

    $t = $caller->ok_call('txn put with prev_kv', 'txn', [],
                          [ { request_put => { key => "${T}2", value => 'new', prev_kv => 1 } } ], []);
    is($t->{responses}[0]{response_put}{prev_kv}{value}, 'v2', 'put with prev_kv: the previous value');
    my $lease = $caller->ok_call('lease for ignore_value', 'lease_grant', 30)->{id};
    $caller->ok_call('txn put with a lease', 'txn', [],
                     [ { request_put => { key => "${T}3", value => 'leased', lease => $lease } } ], []);
    $caller->ok_call('txn put with ignore_value', 'txn', [],
                     [ { request_put => { key => "${T}3", ignore_value => 1, ignore_lease => 1 } } ], []);
    my $g = $caller->ok_call('get after ignore_value', 'get', "${T}3");
    is($g->{kvs}[0]{value}, 'leased', 'put with ignore_value kept the value');
    is($g->{kvs}[0]{lease}, $lease, 'put with ignore_lease kept the lease');

    $t = $caller->ok_call('txn delete with prefix and prev_kv', 'txn', [],
                          [ { request_delete_range => { key => "${T}", prefix => 1, prev_kv => 1 } } ], []);
    my $d = $t->{responses}[0]{response_delete_range};
    is($d->{deleted}, 4, 'delete with prefix: every key');
    is_deeply([ sort map { $_->{key} } @{ $d->{prev_kvs} } ], [ map { "$T$_" } 1 .. 4 ], 'delete with prev_kv: the deleted pairs');

    # Nested transactions, and their results.
    $caller->ok_call('put for the nested txn', 'put', "${T}n", 'a');
    $t = $caller->ok_call('txn with nested txns', 'txn', [], [
        { request_txn => {
            compare => [ { key => "${T}n", value => 'a' } ],
            success => [ { request_put => { key => "${T}n", value => 'b', prev_kv => 1 } },
                         { request_txn => { compare => [ { key => "${T}n", value => 'zzz' } ],
                                            failure => [ { request_range => { key => "${T}n" } } ] } } ],
            failure => [ { request_put => { key => "${T}n", value => 'never' } } ],
        } },
    ], []);
    my $outer = $t->{responses}[0]{response_txn};
    is(ref $outer, 'HASH', 'a nested txn answers with response_txn');
    is($outer->{succeeded}, 1, 'nested txn: its compare held');
    is($outer->{responses}[0]{response_put}{prev_kv}{value}, 'a', 'nested txn: its put ran');
    my $inner = $outer->{responses}[1]{response_txn};
    is($inner->{succeeded}, 0, 'doubly nested txn: its compare failed');
    is($inner->{responses}[0]{response_range}{kvs}[0]{value}, 'b', 'doubly nested txn: its failure branch saw the put before it');
    is(value_of("${T}n"), 'b', 'the nested put is in the store');

    my $loop = { request_txn => { success => [] } };
    push @{ $loop->{request_txn}{success} }, $loop;
    my $ok = eval { $client->txn([], [$loop], [], sub { fail('a txn nesting itself must not be sent') }); 1 };
    ok(!$ok, 'a txn that contains itself croaks');
    like($@, qr/^txn: transactions nested more than 32 deep/, '... naming the nesting limit');
    @{ $loop->{request_txn}{success} } = ();    # no cycle left behind

    # lease_grant with a chosen id
    my $want = 0x7e57_0000 + ($$ % 65536);
    my $l = $caller->ok_call('lease_grant with { id }', 'lease_grant', 30, { id => $want });
    is($l->{id}, $want, 'lease_grant { id => N }: that id');
    $caller->ok_call("lease_revoke $_", 'lease_revoke', $_) for $want, $lease;
}

# ---------------------------------------------------------------------------------
# cleanup; every callback exactly once; no warnings

$caller->ok_call('cleanup', 'delete', $P, { prefix => 1 });
EtcdTest::Caller->exactly_once($caller);
is_deeply(\@warnings, [], 'no warnings at all (no "Odd number of elements" either)');

done_testing;

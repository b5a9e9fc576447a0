use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "BYTES VERSUS CHARACTERS" and "RESPONSES": keys and values are bytes, sent
# verbatim, returned verbatim and never UTF-8 flagged; flagged strings are sent as
# their UTF-8 encoding.  POD "new" (max_recv_size): no practical receive limit.

my @eps    = EtcdTest::endpoints();
my $P      = EtcdTest::prefix();
my $client = EV::Etcd->new(endpoints => [@eps], timeout => 20);

# ok_call: t/lib/EtcdTest.pm (EtcdTest::Caller); 30 s per callback
my $caller = EtcdTest::Caller->new($client, timeout => 30, check_argc => 0);

sub hex_of { defined $_[0] ? unpack('H*', $_[0]) : 'undef' }

# every key and value anywhere in a response must be an unflagged byte string
my $flagged = 0;
my $checked = 0;
sub check_kv_bytes {
    my ($kv) = @_;
    for my $f (qw(key value)) {
        $checked++;
        $flagged++ if !defined $kv->{$f} || utf8::is_utf8($kv->{$f});
    }
}
sub check_resp_bytes {
    my ($resp) = @_;
    check_kv_bytes($_) for @{ $resp->{kvs} || [] }, @{ $resp->{prev_kvs} || [] };
    check_kv_bytes($resp->{prev_kv}) if $resp->{prev_kv};
    for my $sub (@{ $resp->{responses} || [] }) {
        check_resp_bytes($_) for values %$sub;
    }
}

# put $key => $value, read it back by $lookup (default: the stored bytes), compare with $want
sub round_trip {
    my ($name, $key, $value, $want_key, $want_value) = @_;
    my $put = $caller->ok_call("$name: put", 'put', $key, $value);
    my $rev = $put->{header}{revision};
    my $got = $caller->ok_call("$name: get", 'get', $want_key);
    check_resp_bytes($got);
    is(scalar @{ $got->{kvs} || [] }, 1, "$name: found under the expected bytes");
    my $kv = $got->{kvs}[0] || {};
    is(hex_of($kv->{key}),   hex_of($want_key),   "$name: key bytes");
    is(hex_of($kv->{value}), hex_of($want_value), "$name: value bytes");
    ok(!utf8::is_utf8($kv->{key}),   "$name: returned key is not UTF-8 flagged");
    ok(!utf8::is_utf8($kv->{value}), "$name: returned value is not UTF-8 flagged");
    is($kv->{mod_revision}, $rev, "$name: it is the value just written");
    return $kv;
}

# ---------------------------------------------------------------------------------
# NUL bytes

round_trip('NUL bytes', "${P}nul\0key", "a\0b\0\0", "${P}nul\0key", "a\0b\0\0");
{
    my $r = $caller->ok_call('key truncated at the NUL does not exist', 'get', "${P}nul");
    is($r->{count}, 0, 'the key was not truncated at the NUL byte');
    $r = $caller->ok_call('prefix containing the NUL', 'get', "${P}nul\0", { prefix => 1 });
    is_deeply([ map { hex_of($_->{key}) } @{ $r->{kvs} } ], [ hex_of("${P}nul\0key") ], 'prefix ending in NUL finds it');
    is(length $r->{kvs}[0]{value}, 5, 'value with NUL bytes keeps its length');
}
round_trip('value of NULs only', "${P}nuls", "\0\0\0", "${P}nuls", "\0\0\0");
round_trip('key ending in NUL', "${P}endnul\0", 'x', "${P}endnul\0", 'x');

# ---------------------------------------------------------------------------------
# high bytes and all 256 byte values

{
    my $high = join '', map { chr } 0x80 .. 0xff;
    round_trip('bytes 0x80-0xff', "${P}high/$high", scalar reverse($high), "${P}high/$high", scalar reverse($high));

    my $all = join '', map { chr } 0 .. 255;
    is(length $all, 256, 'all-bytes string is 256 bytes');
    round_trip('all 256 byte values', "${P}all/$all", $all . $all, "${P}all/$all", $all . $all);

    my $r = $caller->ok_call('prefix get over binary keys', 'get', "${P}all/", { prefix => 1 });
    is(length $r->{kvs}[0]{value}, 512, 'binary value length preserved');
}

# ---------------------------------------------------------------------------------
# characters: UTF-8 flagged strings are sent as their UTF-8 encoding

{
    my $chinese = "\x{4e2d}";
    ok(utf8::is_utf8($chinese), 'test string "\x{4e2d}" is UTF-8 flagged');
    round_trip('"\x{4e2d}" value', "${P}u/zhong", $chinese, "${P}u/zhong", "\xe4\xb8\xad");

    my $e_flagged = "\xe9";
    utf8::upgrade($e_flagged);
    ok(utf8::is_utf8($e_flagged), 'upgraded "\xe9" is UTF-8 flagged');
    round_trip('flagged "\xe9" value', "${P}u/e-flagged", $e_flagged, "${P}u/e-flagged", "\xc3\xa9");

    my $e_bytes = "\xe9";
    ok(!utf8::is_utf8($e_bytes), 'plain "\xe9" is not flagged');
    round_trip('unflagged "\xe9" value', "${P}u/e-bytes", $e_bytes, "${P}u/e-bytes", "\xe9");

    my $ascii = 'plain ascii';
    utf8::upgrade($ascii);
    round_trip('flagged ASCII', "${P}u/ascii", $ascii, "${P}u/ascii", 'plain ascii');

    # flagged keys: stored under their UTF-8 bytes, found by bytes or by the same characters
    my $smile_key = "${P}u/k\x{263a}";
    ok(utf8::is_utf8($smile_key), 'key with U+263A is flagged');
    round_trip('flagged key', $smile_key, "v\x{263a}", "${P}u/k\xe2\x98\xba", "v\xe2\x98\xba");
    my $r = $caller->ok_call('get by the flagged key', 'get', $smile_key);
    check_resp_bytes($r);
    is(hex_of($r->{kvs}[0]{value}), hex_of("v\xe2\x98\xba"), 'a flagged key finds the key stored by bytes');

    my $k_flagged = "${P}u/key-\xe9";
    utf8::upgrade($k_flagged);
    round_trip('flagged "\xe9" key', $k_flagged, 'f', "${P}u/key-\xc3\xa9", 'f');
    $r = $caller->ok_call('unflagged "\xe9" key is a different key', 'get', "${P}u/key-\xe9");
    is($r->{count}, 0, 'the single byte e9 key does not exist');

    # prefix and range_end given as characters
    $r = $caller->ok_call('flagged prefix', 'get', "${P}u/k\x{263a}", { prefix => 1 });
    is(scalar @{ $r->{kvs} }, 1, 'a flagged prefix matches by its UTF-8 bytes');
    my $end = "${P}u/l";
    utf8::upgrade($end);
    $r = $caller->ok_call('flagged range_end', 'get', "${P}u/k", { range_end => $end });
    check_resp_bytes($r);
    is_deeply([ sort map { hex_of($_->{key}) } @{ $r->{kvs} } ],
              [ sort map { hex_of($_) } "${P}u/k\xe2\x98\xba", "${P}u/key-\xc3\xa9" ], 'a flagged range_end works');
}

# ---------------------------------------------------------------------------------
# empty values, numbers

{
    my $kv = round_trip('empty value', "${P}empty", '', "${P}empty", '');
    ok(defined $kv->{value} && length($kv->{value}) == 0, 'empty value comes back as a defined empty string');
    is($kv->{version}, 1, 'empty value: version 1');

    my $r = $caller->ok_call('overwrite empty value with prev_kv', 'put', "${P}empty", 'now full', { prev_kv => 1 });
    check_resp_bytes($r);
    ok(defined $r->{prev_kv}{value} && $r->{prev_kv}{value} eq '', 'prev_kv of an empty value is ""');

    round_trip('number value',         "${P}num/int",   42,  "${P}num/int",   '42');
    round_trip('zero value',           "${P}num/zero",  0,   "${P}num/zero",  '0');
    round_trip('negative value',       "${P}num/neg",   -3,  "${P}num/neg",   '-3');
    round_trip('fractional value',     "${P}num/frac",  1.5, "${P}num/frac",  '1.5');
}

# ---------------------------------------------------------------------------------
# bytes inside txn: compare values, put values, range results

{
    my $bin = "\0\x01\xfe\xff";
    my $r = $caller->ok_call('txn: put binary value', 'txn',
        [ { key => "${P}txn/b", target => 'version', version => 0 } ],
        [ { request_put => { key => "${P}txn/b", value => $bin } }, { request_range => { key => "${P}txn/b" } } ],
        []);
    is($r->{succeeded}, 1, 'txn with binary put succeeded');
    check_resp_bytes($r);
    my $got = $caller->ok_call('get txn binary value', 'get', "${P}txn/b");
    is(hex_of($got->{kvs}[0]{value}), hex_of($bin), 'txn put stored the bytes verbatim');

    $r = $caller->ok_call('txn: compare binary value', 'txn',
        [ { key => "${P}txn/b", target => 'value', value => $bin } ],
        [ { request_range => { key => "${P}txn/b" } } ], []);
    is($r->{succeeded}, 1, 'binary compare value matches');
    check_resp_bytes($r);
    is(hex_of($r->{responses}[0]{response_range}{kvs}[0]{value}), hex_of($bin), 'txn range returns the bytes');

    $caller->ok_call('put UTF-8 bytes', 'put', "${P}txn/u", "\xe4\xb8\xad");
    $r = $caller->ok_call('txn: flagged compare value', 'txn',
        [ { key => "${P}txn/u", target => 'value', value => "\x{4e2d}" } ], [], []);
    is($r->{succeeded}, 1, 'a flagged compare value is compared as its UTF-8 bytes');
    $r = $caller->ok_call('txn: flagged put', 'txn', [],
        [ { request_put => { key => "${P}txn/\x{263a}", value => "\x{263a}" } } ], []);
    $got = $caller->ok_call('get txn flagged put', 'get', "${P}txn/\xe2\x98\xba");
    is(hex_of($got->{kvs}[0]{value}), hex_of("\xe2\x98\xba"), 'txn put of a flagged value stored UTF-8 bytes');
}

# ---------------------------------------------------------------------------------
# 1 MiB value, and a response larger than 4 MiB

my $MiB = 1048576;
sub pattern {
    my ($seed) = @_;
    my $block = join '', map { chr(($_ * 7 + $seed) % 256) } 0 .. 4095;
    return substr($block x ($MiB / 4096), 0, $MiB);
}
{
    my $big = pattern(1);
    is(length $big, $MiB, 'test value is exactly 1 MiB');
    $caller->ok_call('put 1 MiB value', 'put', "${P}big/one", $big);
    my $r = $caller->ok_call('get 1 MiB value', 'get', "${P}big/one");
    my $v = $r->{kvs}[0]{value};
    is(length($v // ''), $MiB, '1 MiB value: length');
    ok(defined $v && $v eq $big, '1 MiB value: identical bytes');
    ok(!utf8::is_utf8($v // ''), '1 MiB value: not flagged');

    $r = $caller->ok_call('overwrite 1 MiB value with prev_kv', 'put', "${P}big/one", 'small', { prev_kv => 1 });
    ok(($r->{prev_kv}{value} // '') eq $big, '1 MiB prev_kv: identical bytes');
}
{
    my %want;
    for my $i (2 .. 6) {
        $want{"${P}big/$i"} = pattern($i);
        $caller->ok_call("put 1 MiB value #$i", 'put', "${P}big/$i", $want{"${P}big/$i"});
    }
    my $r = $caller->ok_call('range response of more than 5 MiB', 'get', "${P}big/", { prefix => 1 });
    my @kvs = grep { exists $want{ $_->{key} } } @{ $r->{kvs} || [] };
    is(scalar @kvs, 5, 'all five 1 MiB values arrived in one response');
    my $total = 0;
    $total += length $_->{value} for @{ $r->{kvs} || [] };
    cmp_ok($total, '>', 4 * $MiB, 'response carried more than 4 MiB of values');
    is(scalar(grep { $_->{value} ne $want{ $_->{key} } } @kvs), 0, 'every large value is intact');
    my $d = $caller->ok_call('delete the large values with prev_kv', 'delete', "${P}big/", { prefix => 1, prev_kv => 1 });
    is($d->{deleted}, 6, 'deleted the six large keys');
    is(scalar(grep { exists $want{ $_->{key} } && $_->{value} eq $want{ $_->{key} } } @{ $d->{prev_kvs} || [] }), 5,
       'large prev_kvs arrived intact');
}

# ---------------------------------------------------------------------------------
# delete prev_kvs are bytes too; nothing came back flagged

{
    my $r = $caller->ok_call('delete everything with prev_kv', 'delete', $P, { prefix => 1, prev_kv => 1 });
    check_resp_bytes($r);
    cmp_ok($r->{deleted}, '>', 10, 'cleanup deleted the test keys');
}
cmp_ok($checked, '>', 50, 'many returned keys and values were checked');
is($flagged, 0, 'no returned key or value was UTF-8 flagged (or undef)');

EtcdTest::run_until(0.3, sub { 0 });
is_deeply([ map { "$_->{what}:$_->{n}" } grep { $_->{n} != 1 } $caller->records ], [], 'every callback was called exactly once');

done_testing;

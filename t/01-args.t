use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# Offline: POD "CALLING CONVENTIONS" (argument count, callback type, size limits, their
# order) for get, put, delete, compact, txn and status.  The client points at a port
# nobody listens on; calls that are accepted fail later with UNAVAILABLE, calls that
# croak must never call back.

my $port   = EtcdTest::closed_port();
my $client = EV::Etcd->new(endpoints => ["127.0.0.1:$port"], timeout => 5);

my $LIMIT = 1048576;
my $BIG   = 'k' x ($LIMIT + 1);    # one byte over
my $MAX   = 'k' x $LIMIT;          # exactly at the limit

my $croak_cb_calls = 0;
my $cb = sub { $croak_cb_calls++ };    # handed to calls that must croak

sub croaks {
    my ($name, $code, $re) = @_;
    my @ret;
    my $ok = eval { @ret = $code->(); 1 };
    ok(!$ok, "$name croaks") or diag("returned normally");
    like($@, $re, "$name: message");
}

sub starts_with { my $text = shift; return qr/^\Q$text\E/ }
my $usage_get     = starts_with('Usage: $client->get($key, [\%opts,] $callback)');
my $usage_put     = starts_with('Usage: $client->put($key, $value, [\%opts,] $callback)');
my $usage_delete  = starts_with('Usage: $client->delete($key, [\%opts,] $callback)');
my $usage_compact = starts_with('Usage: $client->compact($revision, [\%opts,] $callback)');
my $usage_status  = starts_with('Usage: EV::Etcd::status(client, callback)');
my $not_code      = qr/callback must be a code reference/;
my $key_big       = qr/\Qkey too large: 1048577 bytes (max 1048576)\E/;
my $value_big     = qr/\Qvalue too large: 1048577 bytes (max 1048576)\E/;

# -- argument counts (POD "CALLING CONVENTIONS") ------------------------------------
croaks('get()',                   sub { $client->get() },                      $usage_get);
croaks('get($cb)',                sub { $client->get($cb) },                   $usage_get);
croaks('get(k, {}, {}, $cb)',     sub { $client->get('k', {}, {}, $cb) },      $usage_get);
croaks('get(k, {}, $cb, $cb, $cb)', sub { $client->get('k', {}, $cb, $cb, $cb) }, $usage_get);

croaks('put()',                   sub { $client->put() },                      $usage_put);
croaks('put($cb)',                sub { $client->put($cb) },                   $usage_put);
croaks('put(k, $cb)',             sub { $client->put('k', $cb) },              $usage_put);
croaks('put(k, v, {}, {}, $cb)',  sub { $client->put('k', 'v', {}, {}, $cb) }, $usage_put);

croaks('delete()',                sub { $client->delete() },                   $usage_delete);
croaks('delete($cb)',             sub { $client->delete($cb) },                $usage_delete);
croaks('delete(k, {}, {}, $cb)',  sub { $client->delete('k', {}, {}, $cb) },   $usage_delete);

croaks('compact()',               sub { $client->compact() },                  $usage_compact);
croaks('compact($cb)',            sub { $client->compact($cb) },               $usage_compact);
croaks('compact(1, {}, {}, $cb)', sub { $client->compact(1, {}, {}, $cb) },    $usage_compact);

croaks('status()',                sub { $client->status() },                   $usage_status);
croaks('status($cb, $cb)',        sub { $client->status($cb, $cb) },           $usage_status);
croaks('status([], $cb)',         sub { $client->status([], $cb) },            $usage_status);
croaks('status({}, {}, $cb)',     sub { $client->status({}, {}, $cb) },        $usage_status);

# -- callback must be a code reference (POD "CALLING CONVENTIONS") ------------------
my @not_code = (
    [ 'undef',        undef ],
    [ 'a string',     'main::some_function' ],
    [ 'a number',     42 ],
    [ 'an array ref', [] ],
    [ 'a hash ref',   {} ],
    [ 'a scalar ref', \'x' ],
    [ 'a blessed hash', bless({}, 'Not::Code') ],
);
for my $nc (@not_code) {
    my ($what, $bad) = @$nc;
    croaks("get(k, $what)",         sub { $client->get('k', $bad) },            $not_code);
    croaks("get(k, {}, $what)",     sub { $client->get('k', {}, $bad) },        $not_code);
    croaks("put(k, v, $what)",      sub { $client->put('k', 'v', $bad) },       $not_code);
    croaks("put(k, v, {}, $what)",  sub { $client->put('k', 'v', {}, $bad) },   $not_code);
    croaks("delete(k, $what)",      sub { $client->delete('k', $bad) },         $not_code);
    croaks("delete(k, {}, $what)",  sub { $client->delete('k', {}, $bad) },     $not_code);
    croaks("compact(1, $what)",     sub { $client->compact(1, $bad) },          $not_code);
    croaks("compact(1, {}, $what)", sub { $client->compact(1, {}, $bad) },      $not_code);
    croaks("status($what)",         sub { $client->status($bad) },              $not_code);
    croaks("txn([], [], [], $what)", sub { $client->txn([], [], [], $bad) },    $not_code);
    croaks("txn(callback => $what)", sub { $client->txn(compare => [], callback => $bad) }, $not_code);
}

# txn without any code reference
croaks('txn()',                     sub { $client->txn() },                                $not_code);
croaks('txn([], [], [])',           sub { $client->txn([], [], []) },                      $not_code);
croaks('txn(compare, success, failure) without callback',
       sub { $client->txn(compare => [], success => [], failure => []) },                  $not_code);
croaks('txn named, callback => undef',
       sub { $client->txn(compare => [], success => [], failure => [], callback => undef) }, $not_code);

# -- size limits (POD "CALLING CONVENTIONS") ----------------------------------------
croaks('get(big key)',              sub { $client->get($BIG, $cb) },                        $key_big);
croaks('get(big key, {prefix})',    sub { $client->get($BIG, { prefix => 1 }, $cb) },       $key_big);
croaks('get(k, {range_end => big})', sub { $client->get('k', { range_end => $BIG }, $cb) }, $key_big);
croaks('put(big key)',              sub { $client->put($BIG, 'v', $cb) },                   $key_big);
croaks('put(big key, {prev_kv})',   sub { $client->put($BIG, 'v', { prev_kv => 1 }, $cb) }, $key_big);
croaks('put(k, big value)',         sub { $client->put('k', $BIG, $cb) },                   $value_big);
croaks('put(k, big value, {})',     sub { $client->put('k', $BIG, {}, $cb) },               $value_big);
croaks('delete(big key)',           sub { $client->delete($BIG, $cb) },                     $key_big);
croaks('delete(k, {range_end => big})', sub { $client->delete('k', { range_end => $BIG }, $cb) }, $key_big);

# sizes are counted in bytes of what is sent: a UTF-8 flagged string counts its encoding
{
    my $wide = "\x{e9}" x 524289;    # 524289 characters, 1048578 bytes of UTF-8
    utf8::upgrade($wide);
    croaks('get(UTF-8 key of 1048578 bytes)', sub { $client->get($wide, $cb) },
           qr/\Qkey too large: 1048578 bytes (max 1048576)\E/);
    croaks('put(k, UTF-8 value of 1048578 bytes)', sub { $client->put('k', $wide, $cb) },
           qr/\Qvalue too large: 1048578 bytes (max 1048576)\E/);
}

# txn: keys and values inside compares and ops, in both call forms and both branches
my @txn_big = (
    [ 'compare key',       [ [ { key => $BIG, target => 'version', version => 0 } ], [], [] ], $key_big ],
    [ 'compare value',     [ [ { key => 'k', target => 'value', value => $BIG } ], [], [] ],   $value_big ],
    [ 'success put key',   [ [], [ { request_put => { key => $BIG, value => 'v' } } ], [] ],  $key_big ],
    [ 'success put value', [ [], [ { request_put => { key => 'k', value => $BIG } } ], [] ],  $value_big ],
    [ 'success put alias value', [ [], [ { put => { key => 'k', value => $BIG } } ], [] ],    $value_big ],
    [ 'success range key', [ [], [ { request_range => { key => $BIG } } ], [] ],              $key_big ],
    [ 'success range range_end', [ [], [ { range => { key => 'k', range_end => $BIG } } ], [] ], $key_big ],
    [ 'failure delete key', [ [], [], [ { request_delete_range => { key => $BIG } } ] ],      $key_big ],
    [ 'failure delete range_end', [ [], [], [ { delete => { key => 'k', range_end => $BIG } } ] ], $key_big ],
    [ 'failure put value', [ [], [], [ { request_put => { key => 'k', value => $BIG } } ] ],  $value_big ],
    [ 'second op of a list', [ [], [ { request_put => { key => 'k', value => 'v' } },
                                     { request_put => { key => $BIG, value => 'v' } } ], [] ], $key_big ],
);
for my $t (@txn_big) {
    my ($what, $lists, $re) = @$t;
    my ($cmp, $succ, $fail) = @$lists;
    croaks("txn positional, $what too large", sub { $client->txn($cmp, $succ, $fail, $cb) }, $re);
    croaks("txn named, $what too large",
           sub { $client->txn(compare => $cmp, success => $succ, failure => $fail, $cb) }, $re);
    croaks("txn named with callback =>, $what too large",
           sub { $client->txn(compare => $cmp, success => $succ, failure => $fail, callback => $cb) }, $re);
}

# -- validation order: count -> callback -> size ------------------------------------
croaks('count before callback: get(k, x, y, z)',   sub { $client->get('k', 'x', 'y', 'z') },   $usage_get);
croaks('count before size: get(big)',              sub { $client->get($BIG) },                 $usage_get);
croaks('count before size: put(big, big)',         sub { $client->put($BIG, $BIG) },           $usage_put);
croaks('count before size: delete(big, {}, {}, {})', sub { $client->delete($BIG, {}, {}, {}) }, $usage_delete);
croaks('callback before size: get(big, "x")',      sub { $client->get($BIG, 'x') },            $not_code);
croaks('callback before size: get(k, {range_end => big}, undef)',
       sub { $client->get('k', { range_end => $BIG }, undef) },                                $not_code);
croaks('callback before size: put(big, big, [])',  sub { $client->put($BIG, $BIG, []) },       $not_code);
croaks('callback before size: delete(big, {})',    sub { $client->delete($BIG, {}) },          $not_code);
croaks('callback before size: txn with big key and no callback',
       sub { $client->txn([ { key => $BIG, version => 0 } ], [], []) },                       $not_code);

# -- accepted calls: exact limits, blessed callbacks, ignored option values -------------
# Each of these is sent to the closed port and must call back exactly once with an error.
my %calls;    # name => [ number of calls, [ @args of first call ], source expected ]
sub accept_call {
    my ($name, $source, $code) = @_;
    my $rec = $calls{$name} = { n => 0, args => undef, source => $source };
    my $callback = sub { $rec->{n}++; $rec->{args} //= [@_] };
    my @ret;
    my $ok = eval { @ret = $code->($callback); 1 };
    ok($ok, "$name: accepted") or diag($@);
    is(scalar(@ret), 0, "$name: returns nothing (empty list)");
}

my $MAXV = 'v' x $LIMIT;
accept_call('get with a 1048576-byte key',    'range',  sub { $client->get($MAX, $_[0]) });
accept_call('get with a 1048576-byte range_end', 'range', sub { $client->get('k', { range_end => $MAX }, $_[0]) });
accept_call('put with 1048576-byte key',      'put',    sub { $client->put($MAX, 'v', $_[0]) });
accept_call('put with 1048576-byte value',    'put',    sub { $client->put('k', $MAXV, $_[0]) });
accept_call('delete with a 1048576-byte key', 'delete', sub { $client->delete($MAX, $_[0]) });
accept_call('txn with 1048576-byte key and value', 'txn', sub {
    $client->txn([ { key => $MAX, target => 'value', value => $MAXV } ],
                 [ { request_put => { key => $MAX, value => $MAXV } } ], [], $_[0]) });
{
    my $latin = "\xe9" x $LIMIT;    # not UTF-8 flagged: 1048576 bytes
    accept_call('get with 1048576 unflagged high bytes', 'range', sub { $client->get($latin, $_[0]) });
}

# blessed code references are callbacks too
sub blessed_cb { my $inner = shift; return bless sub { $inner->(@_) }, 'My::Callback' }
accept_call('get with a blessed callback',     'range',   sub { $client->get('k', blessed_cb($_[0])) });
accept_call('get with opts and blessed callback', 'range', sub { $client->get('k', {}, blessed_cb($_[0])) });
accept_call('put with a blessed callback',     'put',     sub { $client->put('k', 'v', blessed_cb($_[0])) });
accept_call('delete with a blessed callback',  'delete',  sub { $client->delete('k', blessed_cb($_[0])) });
accept_call('compact with a blessed callback', 'compact', sub { $client->compact(1, blessed_cb($_[0])) });
accept_call('status with a blessed callback',  'status',  sub { $client->status(blessed_cb($_[0])) });
accept_call('txn positional with a blessed callback', 'txn', sub { $client->txn([], [], [], blessed_cb($_[0])) });
accept_call('txn named with a trailing blessed callback', 'txn',
            sub { $client->txn(compare => [], success => [], blessed_cb($_[0])) });
accept_call('txn named with callback => blessed', 'txn',
            sub { $client->txn(compare => [], callback => blessed_cb($_[0])) });

# an options argument that is not a hash reference is ignored, not an error
accept_call('get(k, [], cb)',        'range',   sub { $client->get('k', [], $_[0]) });
accept_call('get(k, undef, cb)',     'range',   sub { $client->get('k', undef, $_[0]) });
accept_call('get(k, "str", cb)',     'range',   sub { $client->get('k', 'limit', $_[0]) });
accept_call('put(k, v, [], cb)',     'put',     sub { $client->put('k', 'v', [1], $_[0]) });
accept_call('delete(k, undef, cb)',  'delete',  sub { $client->delete('k', undef, $_[0]) });
accept_call('compact(1, "x", cb)',   'compact', sub { $client->compact(1, 'x', $_[0]) });
# a code ref in the options position is just a non-hash option value
accept_call('get(k, sub{}, cb)',     'range',   sub { $client->get('k', sub { $croak_cb_calls++ }, $_[0]) });

is($croak_cb_calls, 0, 'no callback ran synchronously');

my $all_done = EtcdTest::run_until(15, sub { !grep { $_->{n} == 0 } values %calls });
ok($all_done, 'every accepted call called back');
# leave time for stray or duplicate callbacks
ok(EtcdTest::run_loop(3), 'EV::run returns by itself: the croaking calls left nothing outstanding');

for my $name (sort keys %calls) {
    my $rec = $calls{$name};
    is($rec->{n}, 1, "$name: callback called exactly once");
    next unless $rec->{args};
    my ($resp, $err) = @{ $rec->{args} };
    is(scalar(@{ $rec->{args} }), 2, "$name: callback got two arguments");
    ok(!defined $resp, "$name: no response");
    is(ref $err, 'HASH', "$name: error hash");
    is($err->{code}, 14, "$name: UNAVAILABLE (closed port)") or diag explain $err;
    is($err->{source}, $rec->{source}, "$name: source $rec->{source}");
}

is($croak_cb_calls, 0, 'no croaking call ever invoked its callback');

done_testing;

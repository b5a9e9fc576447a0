use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "get_all": every key of a range, page by page, at the revision of the
# first page, while other writes go on.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix() . 'all/';
my $c   = EV::Etcd->new(endpoints => [@eps], timeout => 30);
my $cc  = EtcdTest::Caller->new($c, timeout => 120);
my $N   = 100_000;

# --- 100,000 keys, written in transactions of 100 puts ------------------------------------
{
    my ($done, $failed) = (0, 0);
    my $txns = $N / 100;
    my $next = 0;
    my $issue;
    $issue = sub {
        my $t = $next++;
        return if $t >= $txns;
        my @ops = map {
            my $i = $t * 100 + $_;
            { put => { key => sprintf('%sk%06d', $P, $i), value => "v$i" } }
        } 0 .. 99;
        $c->txn([], \@ops, [], sub { $_[1] ? $failed++ : $done++; $issue->() });
    };
    $issue->() for 1 .. 20;
    EtcdTest::run_until(120, sub { $done + $failed >= $txns });
    undef $issue;
    is($failed, 0, 'seeding: no transaction failed');
    is($done, $txns, "seeding: $N keys written");
}
my $seeded = $cc->ok_call('count', 'get', $P, { prefix => 1, count_only => 1 });
is($seeded->{count}, $N, "$N keys under the prefix");

# --- paging while a writer changes the range -------------------------------------------
my ($pages, $seen, $sorted, $max_page) = (0, 0, 1, 0);
my (%first_value, $last, $info0);
my $writes = 0;
my $writer_on = 1;
my $writer;
$writer = sub {
    return unless $writer_on;
    my $i = $writes++;
    # new keys inside the range, and new values for keys that exist
    $c->put(sprintf('%sk%06d', $P, $i % 2 ? $N + $i : $i), "changed$i", sub { $writer->() });
};
my ($r, $err, $rec) = $cc->call('get_all', $P, {
    prefix    => 1,
    page_size => 777,
    on_page   => sub {
        my ($kvs, $info) = @_;
        # the writer starts once the first page fixed the revision: all its
        # writes come after it
        unless ($info0) {
            $info0 = $info;
            $writer->() for 1 .. 4;
        }
        $pages++;
        $max_page = @$kvs if @$kvs > $max_page;
        for my $kv (@$kvs) {
            $sorted = 0 if defined $last && $kv->{key} le $last;
            $last = $kv->{key};
            $seen++;
            my ($n) = $kv->{key} =~ /k(\d+)\z/;
            $first_value{$n} = $kv->{value};
        }
    },
});
$writer_on = 0;
EtcdTest::run_until(5, sub { 0 });
undef $writer;
ok($r && !$err, 'get_all with on_page succeeded') or diag(explain($err));
cmp_ok($writes, '>', 10, "writes went on meanwhile ($writes)");
is($seen, $N, 'every key of the first revision, none of the later ones');
is($r->{count}, $N, 'count');
is($pages, int(($N + 776) / 777), 'pages of page_size');
is($r->{pages}, $pages, 'pages in the result');
cmp_ok($max_page, '<=', 777, 'no page over page_size');
ok($sorted, 'in key order, no key twice');
ok(!exists $r->{kvs}, 'with on_page the result has no kvs');
is($info0->{total}, $N, 'the first page knows the total');
is($info0->{revision}, $r->{revision}, 'every page at one revision');
is($r->{revision}, $r->{header}{revision}, 'the revision of the first page');
my $bad = grep { $first_value{$_} ne "v" . ($_ + 0) } keys %first_value;
is($bad, 0, 'every value as of the first page, none of the later writes');

# --- one result -------------------------------------------------------------------------------
my $all = $cc->ok_call('get_all as one result', 'get_all', "${P}k000100", {
    range_end => "${P}k000300", page_size => 50, keys_only => 1 });
is(scalar @{ $all->{kvs} || [] }, 200, '200 keys of the range');
is($all->{pages}, 4, 'in 4 pages');
is($all->{kvs}[0]{key}, "${P}k000100", 'from the first key');
is($all->{kvs}[-1]{key}, "${P}k000299", 'to the last');
ok(!grep({ length($_->{value} // '') } @{ $all->{kvs} }), 'keys_only');

my $empty = $cc->ok_call('an empty range', 'get_all', "${P}none/", { prefix => 1 });
is_deeply($empty->{kvs}, [], 'no keys');
is($empty->{pages}, 1, 'one (empty) page');

# --- a namespaced client sees its own keys ----------------------------------------------------
{
    my $ns = EV::Etcd->new(endpoints => [@eps], timeout => 30, namespace => $P);
    my $nc = EtcdTest::Caller->new($ns, timeout => 60);
    my $got = $nc->ok_call('namespaced get_all', 'get_all', 'k00000', { prefix => 1, page_size => 3 });
    is(scalar @{ $got->{kvs} || [] }, 10, 'k00000 .. k00009');
    is($got->{kvs}[0]{key}, 'k000000', 'keys without the namespace');
    # the empty key with prefix: the whole namespace, as get sees it
    my $whole = $nc->ok_call('namespace count', 'get', '', { prefix => 1, count_only => 1 });
    my $every = $nc->ok_call('get_all of the empty key', 'get_all', '',
        { prefix => 1, keys_only => 1, page_size => 5000, on_page => sub { } });
    cmp_ok($whole->{count}, '>=', $N, 'get: at least the seeded keys');
    is($every->{count}, $whole->{count}, 'get_all: every key of the namespace');
}

# --- errors -----------------------------------------------------------------------------------
{
    my $e = $cc->err_call('an on_page that dies', 'get_all', $P, { prefix => 1, page_size => 10,
        on_page => sub { die "stop here\n" } });
    is($e->{source}, 'get_all', 'source get_all');
    like($e->{message}, qr/^get_all: on_page died: stop here/, 'the exception');
    my $compacted = $cc->ok_call('current revision', 'get', 'x');
    $cc->ok_call('compact', 'compact', $compacted->{header}{revision});
    $e = $cc->err_call('a revision compacted away', 'get_all', $P, { prefix => 1, revision => 2 });
    is($e->{status}, 'OUT_OF_RANGE', 'OUT_OF_RANGE');
}
for my $bad ([ [], qr/^Usage: \$client->get_all/ ],
             [ [ $P, { page_size => 0 } ], qr/^get_all: page_size must be a positive integer/ ],
             [ [ $P, { limit => 5, prefix => 1 } ], qr/^get_all: unknown option 'limit'/ ],
             [ [ $P, { sort_order => 'descend', prefix => 1 } ], qr/^get_all: unknown option 'sort_order'/ ],
             [ [ $P, {} ], qr/^get_all: a range \(range_end or prefix\) is required/ ],
             [ [ $P, { prefix => 1, on_page => 1 } ], qr/^get_all: on_page must be a code reference/ ]) {
    my ($args, $re) = @$bad;
    ok(!eval { $c->get_all(@$args, sub { }); 1 }, "croaks: $re");
    like($@, $re, 'message');
}

EtcdTest::Caller->exactly_once($cc);
$cc->ok_call('cleanup', 'delete', $P, { prefix => 1 });
done_testing;

use strict;
use warnings;
use Test::More;
use Scalar::Util ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# EV::Etcd::STM (POD of lib/EV/Etcd/STM.pm, EV::Etcd "stm", EV::Etcd::Future
# "stm"): reads, buffered writes, conflicts and retries, abort, exceptions,
# every isolation level (what each one checks, shown by forcing the
# interleaving with a second client, and concurrent transfers), the future
# form and the croaks. Against a private member (one part compacts).

EtcdTest::seeded(EV_ETCD_STM_SEED => 20261204);

my $srv = EtcdTest->start;
my @eps = ($srv->endpoint);
my $P   = EtcdTest::prefix();
my $c   = EV::Etcd->new(endpoints => [@eps], timeout => 10);
my $o   = EV::Etcd->new(endpoints => [@eps], timeout => 10);    # the "other" client

my @RECORDS;    # every final callback: called exactly once, with two arguments

# Starts an stm on $client and waits for its final callback.
sub stm_run {
    my ($client, $apply, $opts, $secs) = @_;
    my $rec = start_stm($client, $apply, $opts);
    ok(EtcdTest::run_until($secs // 30, sub { $rec->{n} }), 'stm answered')
        or diag 'no answer';
    return ($rec->{res}, $rec->{err});
}

sub start_stm {
    my ($client, $apply, $opts, $then) = @_;
    my $rec = { n => 0 };
    push @RECORDS, $rec;
    $client->stm($apply, $opts // {}, sub {
        $rec->{n}++;
        $rec->{argc} = scalar @_;
        ($rec->{res}, $rec->{err}) = @_;
        $then->(@_) if $then;
    });
    return $rec;
}

# Plain requests through the other client, waited for.
sub call {
    my ($client, $method, @args) = @_;
    my $r;
    $client->$method(@args, sub { $r = [@_] });
    EtcdTest::run_until(15, sub { $r }) or die "$method: no answer\n";
    die "$method: $r->[1]{message}\n" if $r->[1];
    return $r->[0];
}
sub value_of { my $kv = call($o, 'get', $_[0])->{kvs}[0]; $kv ? $kv->{value} : undef }

sub error_is {
    my ($err, $code, $status, $message, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_deeply($err, { code => $code, status => $status, message => $message, source => 'stm',
                      retryable => $code == 10 ? 1 : 0 }, $name);
}

# ---------------------------------------------------------------------------
# reads, own writes, absent keys, rev, the result

{
    call($o, 'put', "${P}r/a", 'A1');
    call($o, 'put', "${P}r/d", 'D1');
    my $a_rev = call($o, 'get', "${P}r/a")->{kvs}[0]{mod_revision};
    my (%seen, $obj);
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        $obj = $stm;
        Scalar::Util::weaken($obj);
        $seen{attempt} = $stm->attempt;
        $seen{isolation} = $stm->isolation;
        $seen{rev_before} = $stm->rev("${P}r/a");
        $stm->get("${P}r/a", sub {
            $seen{a} = $_[0];
            $seen{rev_a} = $stm->rev("${P}r/a");
            $stm->get("${P}r/none", sub {
                $seen{none} = [@_];
                $seen{rev_none} = $stm->rev("${P}r/none");
                $stm->put("${P}r/a", 'A2');
                $stm->put("${P}r/n", "\x{263a}");
                $stm->del("${P}r/d");
                $stm->get("${P}r/a", sub {
                    $seen{a2} = $_[0];
                    $stm->get("${P}r/d", sub {
                        $seen{d} = [@_];
                        $stm->get("${P}r/n", sub {
                            $seen{n} = $_[0];
                            $seen{rev_n} = $stm->rev("${P}r/n");
                            $stm->put("${P}r/a", 'A3');    # the last write wins
                            $stm->commit;
                            $seen{open_after_commit} = $stm->is_open;
                        });
                    });
                });
            });
        });
    });
    is($err, undef, 'stm succeeded');
    is($seen{attempt}, 1, 'attempt 1');
    is($seen{isolation}, 'serializable_snapshot', 'default isolation is serializable_snapshot');
    is($seen{rev_before}, undef, 'rev of a key not read yet is undef');
    is($seen{a}, 'A1', 'get reads the stored value');
    is($seen{rev_a}, $a_rev, 'rev gives the mod_revision read');
    is_deeply($seen{none}, [undef], 'an absent key reads undef (one argument)');
    is($seen{rev_none}, 0, 'rev of an absent key read is 0');
    is($seen{a2}, 'A2', 'a get sees the attempt\'s own put');
    is_deeply($seen{d}, [undef], 'a get of a key the attempt deleted reads undef');
    is($seen{n}, "\xe2\x98\xba", 'a buffered character string reads back as its UTF-8 bytes');
    is($seen{rev_n}, undef, 'rev of a key only written is undef');
    is($seen{open_after_commit}, 0, 'is_open is false after commit');
    is(ref $res, 'HASH', 'result is a hash');
    is_deeply([ sort keys %$res ], [qw(attempts header responses revision succeeded)], 'result keys');
    is($res->{succeeded}, 1, 'succeeded');
    is($res->{attempts}, 1, 'one attempt');
    my $now = call($o, 'get', "${P}r/a");
    is($res->{revision}, $now->{kvs}[0]{mod_revision}, 'revision is the commit\'s revision');
    is($res->{header}{revision}, $res->{revision}, 'header revision');
    is(scalar @{ $res->{responses} }, 3, 'one response per written key');
    is_deeply([ map { keys %$_ } @{ $res->{responses} } ],
              [qw(response_put response_put response_delete_range)], 'responses in first-write order');
    is(value_of("${P}r/a"), 'A3', 'the last put of a key was written');
    is(value_of("${P}r/n"), "\xe2\x98\xba", 'the new key was written');
    is(value_of("${P}r/d"), undef, 'the deleted key is gone');
    is($obj, undef, 'the attempt object is freed once the stm is over');
}

# ---------------------------------------------------------------------------
# a conflict is retried; the retry sees the other client's write

sub forced_conflict {
    my ($iso) = @_;
    my $k = "${P}c/$iso";
    call($o, 'put', $k, 10);
    my @read;
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        my $n = $stm->attempt;
        $stm->get($k, sub {
            my ($v) = @_;
            push @read, $v;
            $stm->put($k, $v + 1);
            return $stm->commit if $n > 1;
            # another client changes the key the attempt read
            $o->put($k, 100, sub { $stm->commit });
        });
    }, { isolation => $iso });
    return ($res, $err, \@read, value_of($k));
}

for my $iso (qw(serializable_snapshot serializable repeatable_read)) {
    my ($res, $err, $read, $final) = forced_conflict($iso);
    is($err, undef, "$iso: conflict retried, no error");
    is($res->{attempts}, 2, "$iso: two attempts");
    is_deeply($read, [10, 100], "$iso: the retry read the other client's value");
    is($final, 101, "$iso: the retry's write was committed");
}
{
    my ($res, $err, $read, $final) = forced_conflict('read_committed');
    is($err, undef, 'read_committed: no error');
    is($res->{attempts}, 1, 'read_committed: no conflict check, one attempt');
    is($final, 11, 'read_committed: the other client\'s write was overwritten (a lost update)');
}

# serializable_snapshot also checks written keys it never read; serializable
# does not
for my $case ([serializable_snapshot => 2, 'W2'], [serializable => 1, 'W1']) {
    my ($iso, $attempts, $final) = @$case;
    my ($r, $w) = ("${P}s/$iso/r", "${P}s/$iso/w");
    call($o, 'put', $r, 'R');
    call($o, 'put', $w, 'W0');
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        my $n = $stm->attempt;
        $stm->get($r, sub {
            $stm->put($w, "W$n");
            return $stm->commit if $n > 1;
            $o->put($w, 'other', sub { $stm->commit });
        });
    }, { isolation => $iso });
    is($err, undef, "$iso: write-set case answered without error");
    is($res->{attempts}, $attempts, "$iso: $attempts attempt(s) when a written, unread key changed");
    is(value_of($w), $final, "$iso: final value of the written key");
}

# serializable levels read at the first read's revision; repeatable_read
# reads the newest data
for my $case ([serializable_snapshot => 'old'], [serializable => 'old'], [repeatable_read => 'new'],
              [read_committed => 'new']) {
    my ($iso, $expect) = @$case;
    my ($x, $y) = ("${P}p/$iso/x", "${P}p/$iso/y");
    call($o, 'put', $x, 'x');
    call($o, 'put', $y, 'old');
    my @got;
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        my $n = $stm->attempt;
        $stm->get($x, sub {
            my $next = sub { $stm->get($y, sub { push @got, $_[0]; $stm->commit }) };
            return $next->() if $n > 1;
            $o->put($y, 'new', $next);
        });
    }, { isolation => $iso });
    is($err, undef, "$iso: snapshot case without error");
    is($got[0], $expect, "$iso: a later read sees the $expect value");
    my $att = $iso eq 'read_committed' || $iso eq 'repeatable_read' ? 1 : 2;
    # the serializable levels read y before the change: the commit conflicts
    is($res->{attempts}, $att, "$iso: $att attempt(s)");
}

# reads issued together before the first one is answered: all at one revision
{
    my @k = map { "${P}par/$_" } 1 .. 4;
    call($o, 'put', $_, 'v0') for @k;
    my (@vals, %revs);
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        my $left = @k;
        for my $i (0 .. $#k) {
            $stm->get($k[$i], sub {
                $vals[$i] = $_[0];
                $stm->commit unless --$left;
            });
        }
        $stm->get($k[0], sub { });    # the same key twice
        # a write racing the reads, in the first attempt only: repeated in
        # every attempt, it could conflict each time until the retries ran out
        $o->put($k[3], 'v1', sub { }) if $stm->attempt == 1;
    }, { isolation => 'serializable' });
    is($err, undef, 'parallel reads: no error');
    ok($res->{attempts} >= 1, 'parallel reads: committed');
    is(scalar(grep { defined } @vals), 4, 'every parallel read answered');
}

# prefetch: the keys are in the read set before the apply function runs
{
    my @k = map { "${P}pf/$_" } 1 .. 3;
    call($o, 'put', $_, "p$_") for @k[0, 1];
    my %rev;
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        $rev{$_} = $stm->rev($_) for @k;
        $stm->commit;
    }, { prefetch => \@k });
    is($err, undef, 'prefetch: no error');
    ok($rev{ $k[0] } > 0 && $rev{ $k[1] } > 0, 'prefetched existing keys have their mod revision');
    is($rev{ $k[2] }, 0, 'a prefetched absent key has rev 0');
    # a change to a prefetched key is a conflict even if the function never asks for it
    my $runs = 0;
    ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        $runs++;
        return $stm->commit if $stm->attempt > 1;
        $o->put($k[2], 'changed', sub { $stm->commit });
    }, { prefetch => \@k, isolation => 'repeatable_read' });
    is($res->{attempts}, 2, 'prefetch: a changed prefetched key is a conflict');
}

# after a conflict the serializable levels start from what the failed
# commit read again (Go's STM does the same): a read of such a key makes no
# request, so a change made before it is only seen by the attempt after
for my $case ([serializable => [qw(first second third)], 3], [repeatable_read => [qw(first third)], 2]) {
    my ($iso, $reads, $attempts) = @$case;
    my $k = "${P}else/$iso";
    call($o, 'put', $k, 'first');
    my @read;
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        my $n = $stm->attempt;
        my $read = sub {
            $stm->get($k, sub {
                push @read, $_[0];
                $stm->put($k, "$_[0]+");
                return $stm->commit if $n > 1;
                $o->put($k, 'second', sub { $stm->commit });
            });
        };
        return $read->() if $n != 2;
        $o->put($k, 'third', $read);
    }, { isolation => $iso });
    is($err, undef, "$iso: no error");
    is_deeply(\@read, $reads, "$iso: reads of the attempts after a conflict");
    is($res->{attempts}, $attempts, "$iso: $attempts attempts");
}

# keys the failed commit read again join the next attempt's read set only
# when that attempt reads them
{
    my ($x, $y) = ("${P}else2/x", "${P}else2/y");
    call($o, 'put', $x, 1);
    call($o, 'put', $y, 1);
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        my $n = $stm->attempt;
        $stm->get($x, sub {
            my ($v) = @_;
            $stm->put($x, $v + 1);
            return $o->put($y, 3, sub { $stm->commit }) if $n > 1;
            $stm->get($y, sub { $o->put($x, 5, sub { $stm->commit }) });
        });
    }, { isolation => 'serializable' });
    is($err, undef, 'unread cached key: no error');
    is($res->{attempts}, 2, 'a change to a key only the failed attempt read is no conflict');
    is(value_of($x), 6, 'unread cached key: the second attempt\'s write');
}

# put options: lease, prev_kv
{
    my $k = "${P}lease/k";
    call($o, 'put', $k, 'before');
    my $lease = call($o, 'lease_grant', 60)->{id};
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        $stm->put($k, 'leased', { lease => $lease, prev_kv => 1 });
        $stm->commit;
    });
    is($err, undef, 'put with options: no error');
    is($res->{responses}[0]{response_put}{prev_kv}{value}, 'before', 'prev_kv came back in the responses');
    my $kv = call($o, 'get', $k)->{kvs}[0];
    is($kv->{lease}, $lease, 'the put carried the lease');
    call($o, 'lease_revoke', $lease);
    is(value_of($k), undef, 'revoking the lease removed the key');
}

# a namespaced client: keys are the client's, the namespace applies
{
    my $ns = EV::Etcd->new(endpoints => [@eps], timeout => 10, namespace => "${P}ns/");
    my ($seen, $kept);
    my ($res, $err) = stm_run($ns, sub {
        my ($stm) = @_;
        $kept = $stm;
        $stm->get('k', sub { $seen = $_[0]; $stm->put('k', 'in ns'); $stm->commit });
    });
    is($err, undef, 'namespaced stm: no error');
    is(value_of("${P}ns/k"), 'in ns', 'namespaced stm: written under the namespace');
    call($o, 'put', "${P}ns/k", 'changed');
    ($res, $err) = stm_run($ns, sub {
        my ($stm) = @_;
        $stm->get('k', sub { $seen = $_[0]; $stm->commit });
    });
    is($seen, 'changed', 'namespaced stm: reads under the namespace');
    # the stm kept nothing alive, even with an attempt object kept: the
    # client goes away when dropped
    is($kept->rev('k'), 0, 'a kept attempt still answers rev');
    my $weak = $ns;
    Scalar::Util::weaken($weak);
    undef $ns;
    EtcdTest::run_loop(0.1);
    is($weak, undef, 'a client that ran stms is freed when dropped');
}

# ---------------------------------------------------------------------------
# abort, exceptions, dropped attempts, retries exhausted

{
    my $k = "${P}ab/k";
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        $stm->put($k, 'no');
        $stm->get($k, sub { $stm->abort('not enough money') });
    });
    is($res, undef, 'abort: no result');
    error_is($err, 1, 'CANCELLED', 'not enough money', 'abort: the reason is the message');
    is(value_of($k), undef, 'abort: nothing was written');

    ($res, $err) = stm_run($c, sub { $_[0]->abort });
    error_is($err, 1, 'CANCELLED', 'stm: aborted', 'abort without a reason');

    my $runs = 0;
    ($res, $err) = stm_run($c, sub { $runs++; $_[0]->put($k, 'x'); die "boom\n" });
    error_is($err, 2, 'UNKNOWN', 'stm: apply function died: boom', 'an exception in the apply function');
    is($runs, 1, 'the apply function that died was not run again');
    is(value_of($k), undef, 'exception: nothing was written');

    ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        $stm->get($k, sub { die "read callback broke\n" });
    });
    error_is($err, 2, 'UNKNOWN', 'stm: apply function died: read callback broke', 'an exception in a read callback');

    ($res, $err) = stm_run($c, sub { my ($stm) = @_; $stm->get($k, sub { }) });
    error_is($err, 2, 'UNKNOWN', 'stm: the attempt was dropped without commit or abort',
             'a read callback that neither commits nor aborts');
    ($res, $err) = stm_run($c, sub { });
    error_is($err, 2, 'UNKNOWN', 'stm: the attempt was dropped without commit or abort',
             'an apply function that does nothing');

    # methods of an ended attempt croak; an exception after commit does not
    # change the outcome and goes to $EV::DIED
    my (@croaks, @died);
    {
        local $EV::DIED = sub { push @died, $@ };
        ($res, $err) = stm_run($c, sub {
            my ($stm) = @_;
            $stm->put($k, 'committed');
            $stm->commit;
            for my $m ([put => $k, 'v'], [get => $k, sub { }], [del => $k], ['commit'], ['abort']) {
                my ($name, @a) = @$m;
                push @croaks, eval { $stm->$name(@a); 1 } ? "$name did not croak" : $@;
            }
            die "after commit\n";
        });
        EtcdTest::run_loop(0.2);
    }
    is($err, undef, 'exception after commit: the commit stands');
    is(value_of($k), 'committed', 'exception after commit: written');
    is(scalar(grep { /^EV::Etcd::STM::Txn::(\w+): the attempt has ended at \Q${\ __FILE__}\E line/ } @croaks), 5,
       'every method of an ended attempt croaks naming itself and the caller') or diag explain \@croaks;
    is_deeply(\@died, ["after commit\n"], 'the exception after commit went to $EV::DIED');
}

for my $retries (0, 2) {
    my $k = "${P}ex/$retries";
    call($o, 'put', $k, 0);
    my $runs = 0;
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        $runs++;
        $stm->get($k, sub {
            $stm->put($k, $_[0] + 1);
            $o->put($k, 1000 + $runs, sub { $stm->commit });
        });
    }, { retries => $retries, backoff => 0.001 });
    is($res, undef, "retries => $retries: no result");
    error_is($err, 10, 'ABORTED', 'stm: too many conflicts', "retries => $retries: conflicts exhausted");
    is($runs, $retries + 1, "retries => $retries: the apply function ran " . ($retries + 1) . ' time(s)');
    is(value_of($k), 1000 + $runs, "retries => $retries: none of the attempts wrote");
}

# a read that fails fails the stm with its error (here: the pinned revision
# was compacted while the attempt ran)
{
    my ($x, $y) = ("${P}cp/x", "${P}cp/y");
    call($o, 'put', $x, 1);
    call($o, 'put', $y, 1);
    my $called = 0;
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        $stm->get($x, sub {
            $o->put($y, 2, sub {
                my $rev = $_[0]{header}{revision};
                $o->compact($rev, sub { $stm->get($y, sub { $called++; $stm->commit }) });
            });
        });
    }, { isolation => 'serializable' });
    is($res, undef, 'compacted read: no result');
    is(ref $err, 'HASH', 'compacted read: an error');
    is($err->{status}, 'OUT_OF_RANGE', 'compacted read: the read\'s own error (OUT_OF_RANGE)');
    is($err->{source}, 'txn', 'compacted read: source of the read request');
    like($err->{message}, qr/compacted/, 'compacted read: etcd\'s message');
    is($called, 0, 'the failed read\'s callback was not called');
}

# ---------------------------------------------------------------------------
# concurrent transfers: 4 workers (separate clients) x 50 transfers among 5
# accounts, under each isolation level. The first transfer of every worker
# is the same one (1 from the first account to the second), and none of
# them commits before all four have read: whatever the timing, the workers
# contend, and under the checked levels all but one of them conflict.

sub transfers {
    my ($iso) = @_;
    my @acct = map { "${P}bank/$iso/$_" } 1 .. 5;
    call($o, 'put', $_, 100) for @acct;
    my (%stats, @errors);
    my @clients = map { EV::Etcd->new(endpoints => [@eps], timeout => 10) } 1 .. 4;
    my $running = 0;
    my @held;    # the first transfers' commits, until all four have read
    for my $w (0 .. 3) {
        my $left = 50;
        my $next;
        $next = sub {
            return $running-- unless $left--;
            my ($from, $to) = (int rand 5, int rand 4);
            $to++ if $to >= $from;
            my $amount = 1 + int rand 40;
            my $style = int rand 3;
            my $gated = $left == 49;
            ($from, $to, $amount, $style) = (0, 1, 1, 0) if $gated;
            my $apply = sub {
                my ($stm) = @_;
                my ($f, $t, $got) = (undef, undef, 0);
                my $decide = sub {
                    return $stm->abort('insufficient') if $f < $amount;
                    $stm->put($acct[$from], $f - $amount);
                    $stm->put($acct[$to], $t + $amount);
                    $stm->commit;
                };
                if ($gated) {    # its first attempt only
                    $gated = 0;
                    my $go = $decide;
                    $decide = sub {
                        push @held, $go;
                        if (@held == 4) { $_->() for splice @held }
                    };
                }
                if ($style == 0) {    # one after the other
                    $stm->get($acct[$from], sub {
                        $f = $_[0];
                        $stm->get($acct[$to], sub { $t = $_[0]; $decide->() });
                    });
                }
                else {                # both at once (style 2 prefetched)
                    $stm->get($acct[$from], sub { $f = $_[0]; $decide->() if ++$got == 2 });
                    $stm->get($acct[$to],   sub { $t = $_[0]; $decide->() if ++$got == 2 });
                }
            };
            start_stm($clients[$w], $apply,
                { isolation => $iso, retries => 200, $style == 2 ? (prefetch => [ @acct[$from, $to] ]) : () },
                sub {
                    my ($res, $err) = @_;
                    if ($err) {
                        if ($err->{message} eq 'insufficient') { $stats{aborted}++ }
                        else { push @errors, $err }
                    }
                    else {
                        $stats{committed}++;
                        $stats{attempts} += $res->{attempts};
                        $stats{max_attempts} = $res->{attempts} if $res->{attempts} > ($stats{max_attempts} // 0);
                    }
                    $next->();
                });
        };
        $running++;
        $next->();
    }
    ok(EtcdTest::run_until(180, sub { !$running }), "$iso: every worker finished");
    my @vals = map { call($o, 'get', $_)->{kvs}[0]{value} } @acct;
    return (\%stats, \@errors, \@vals);
}

for my $iso (qw(serializable_snapshot serializable repeatable_read read_committed)) {
    my ($stats, $errors, $vals) = transfers($iso);
    is_deeply($errors, [], "$iso: no transfer failed");
    is(($stats->{committed} // 0) + ($stats->{aborted} // 0), 200, "$iso: 200 transfers ended");
    note(sprintf '%s: %d committed (%d attempts, at most %d), %d aborted; balances %s', $iso,
         $stats->{committed} // 0, $stats->{attempts} // 0, $stats->{max_attempts} // 0,
         $stats->{aborted} // 0, "@$vals");
    if ($iso eq 'read_committed') {
        # nothing is checked at commit: every transfer commits at its first
        # attempt, and lost updates may change the total
        is($stats->{attempts}, $stats->{committed}, "$iso: every commit took one attempt");
        next;
    }
    my $total = 0;
    $total += $_ for @$vals;
    is($total, 500, "$iso: the total is unchanged");
    is(scalar(grep { $_ < 0 } @$vals), 0, "$iso: no account went negative");
    ok($stats->{attempts} > $stats->{committed}, "$iso: some transfers conflicted and were retried");
}

# ---------------------------------------------------------------------------
# the future form (plain ->then chains)

{
    require EV::Etcd::Future;
    my $fe = $c->future;
    my $k = "${P}fu/k";
    call($o, 'put', $k, 5);
    my @read;
    my $f = $fe->stm(sub {
        my ($stm) = @_;
        my $n = $stm->attempt;
        return $stm->get_f($k)->then(sub {
            my ($v) = @_;
            push @read, $v;
            $stm->put($k, $v * 2);
            return Future->done("doubled $v") if $n > 1;
            my $other = EV::Etcd::Future::EV->new;
            $o->put($k, 7, sub { $other->done });
            return $other->then(sub { Future->done("doubled $v") });
        });
    }, { isolation => 'serializable' });
    isa_ok($f, 'Future', 'future stm returns a future');
    my $res = eval { $f->get };
    is($@, '', 'future stm: done');
    is($res->{attempts}, 2, 'future stm: the conflict was retried');
    is($res->{value}, 'doubled 7', 'future stm: value is the committed attempt\'s result');
    is_deeply(\@read, [5, 7], 'future stm: reads of both attempts');
    is(value_of($k), 14, 'future stm: written');

    # an apply future that fails, an etcd error passed through, a non-future
    $f = $fe->stm(sub { my ($stm) = @_; $stm->put($k, 0); Future->fail('no way') });
    is(eval { $f->get; 1 }, undef, 'future stm: a failed apply future fails the stm');
    my ($msg, $cat, $err) = $f->failure;
    is($cat, 'etcd', 'future stm: failure category etcd');
    error_is($err, 2, 'UNKNOWN', 'stm: apply function failed: no way', 'future stm: failure error hash');
    is(value_of($k), 14, 'future stm: nothing written by the failed attempt');

    $f = $fe->stm(sub { 42 });
    eval { $f->get };
    error_is(($f->failure)[2], 2, 'UNKNOWN', 'stm: apply function died: the apply function must return a Future',
             'future stm: the apply function must return a future');

    $f = $fe->stm(sub { my ($stm) = @_; $stm->get_f($k)->then(sub { $stm->abort('stop'); Future->done }) });
    eval { $f->get };
    error_is(($f->failure)[2], 1, 'CANCELLED', 'stop', 'future stm: abort inside the chain');

    # a pending get_f fails when the attempt ends
    my $pending;
    $f = $fe->stm(sub {
        my ($stm) = @_;
        $pending = $stm->get_f("${P}fu/other");
        $stm->commit;
        return Future->done;
    });
    $res = eval { $f->get };
    is($res->{succeeded}, 1, 'future stm: committed explicitly');
    ok($pending->is_failed, 'a get_f still pending when the attempt ended failed');
    is(($pending->failure)[0], 'stm: the attempt ended', 'its failure message');
}

# ---------------------------------------------------------------------------
# croaks

{
    my $cb = sub { };
    my $line;
    my @cases = (
        [ 'apply not code', qr/^EV::Etcd::stm: apply must be a code reference at \Q${\ __FILE__}\E line/,
          sub { $c->stm('nope', $cb) } ],
        [ 'apply a hash', qr/^EV::Etcd::stm: apply must be a code reference/, sub { $c->stm({}, {}, $cb) } ],
        [ 'callback not code', qr/^EV::Etcd::stm: callback must be a code reference/, sub { $c->stm($cb, {}, 'x') } ],
        [ 'bad isolation', qr/^EV::Etcd::stm: isolation must be one of serializable_snapshot, serializable, repeatable_read, read_committed/,
          sub { $c->stm($cb, { isolation => 'snapshot' }, $cb) } ],
        [ 'unknown option', qr/^EV::Etcd::stm: unknown option 'isolaton'/, sub { $c->stm($cb, { isolaton => 'serializable' }, $cb) } ],
        [ 'bad retries', qr/^EV::Etcd::stm: retries must be a non-negative integer/, sub { $c->stm($cb, { retries => -1 }, $cb) } ],
        [ 'bad backoff', qr/^EV::Etcd::stm: backoff must be a non-negative number/, sub { $c->stm($cb, { backoff => 'soon' }, $cb) } ],
        [ 'bad prefetch', qr/^EV::Etcd::stm: prefetch must be an array reference of keys/, sub { $c->stm($cb, { prefetch => 'k' }, $cb) } ],
        [ 'prefetch with undef', qr/^EV::Etcd::stm: prefetch must be an array reference of keys/, sub { $c->stm($cb, { prefetch => [undef] }, $cb) } ],
        [ 'prefetch key too large', qr/^EV::Etcd::stm: prefetch key too large: 1048577 bytes/,
          sub { $c->stm($cb, { prefetch => ['K' x 1_048_577] }, $cb) } ],
        [ 'options not a hash', qr/^EV::Etcd::stm: options must be a hash reference/, sub { $c->stm($cb, [], $cb) } ],
        [ 'too few arguments', qr/^Usage: \$etcd->stm/, sub { $c->stm($cb) } ],
        [ 'class method', qr/^client is not of type EV::Etcd at \Q${\ __FILE__}\E line/, sub { EV::Etcd->stm($cb, $cb) } ],
        [ 'future: apply not code', qr/^EV::Etcd::Future::stm: apply must be a code reference/, sub { $c->future->stm(1) } ],
        [ 'future: bad isolation', qr/^EV::Etcd::Future::stm: isolation must be one of/,
          sub { $c->future->stm($cb, { isolation => 'x' }) } ],
    );
    for my $case (@cases) {
        my ($name, $re, $code) = @$case;
        ok(!eval { $code->(); 1 }, "$name croaks");
        like($@, $re, "$name: message");
    }
    # attempt methods: bad keys and values
    my @croaks;
    my ($res, $err) = stm_run($c, sub {
        my ($stm) = @_;
        for my $m ([get => undef, $cb], [get => "${P}k", 'notcode'], [put => '', 'v'], [put => "${P}k", undef],
                   [put => "${P}k", 'v', { lease => 1, ttl => 5 }], [del => [1]], [get => 'K' x 1_048_577, $cb],
                   [put => "${P}k", 'v', { lease => 'abc' }], [put => "${P}k", 'V' x 1_048_577], [rev => undef]) {
            my ($name, @a) = @$m;
            push @croaks, eval { $stm->$name(@a); 1 } ? "$name did not croak" : $@;
        }
        $stm->abort('done');
    });
    like($croaks[0], qr/^EV::Etcd::STM::Txn::get: key must be a non-empty string at /, 'get without key');
    like($croaks[1], qr/^EV::Etcd::STM::Txn::get: callback must be a code reference/, 'get without callback');
    like($croaks[2], qr/^EV::Etcd::STM::Txn::put: key must be a non-empty string/, 'put with an empty key');
    like($croaks[3], qr/^EV::Etcd::STM::Txn::put: value must be defined/, 'put without value');
    like($croaks[4], qr/^EV::Etcd::STM::Txn::put: unknown option 'ttl'/, 'put with an unknown option');
    like($croaks[5], qr/^EV::Etcd::STM::Txn::del: key must be a non-empty string/, 'del with a reference');
    like($croaks[6], qr/^EV::Etcd::STM::Txn::get: key too large: 1048577 bytes \(max 1048576\)/, 'get with a key too large');
    like($croaks[7], qr/^EV::Etcd::STM::Txn::put: lease must be a lease id/, 'put with a bad lease');
    like($croaks[8], qr/^EV::Etcd::STM::Txn::put: value too large: 1048577 bytes/, 'put with a value too large');
    like($croaks[9], qr/^EV::Etcd::STM::Txn::rev: key must be a non-empty string/, 'rev without key');
    error_is($err, 1, 'CANCELLED', 'done', 'the croaks did not end the attempt');
}

# ---------------------------------------------------------------------------
# every final callback ran exactly once, with two arguments

EtcdTest::run_loop(0.3);
is_deeply([ map { "$_->{n}/$_->{argc}" } grep { $_->{n} != 1 || $_->{argc} != 2 } @RECORDS ], [],
          scalar(@RECORDS) . ' final callbacks each ran exactly once with two arguments');

done_testing;

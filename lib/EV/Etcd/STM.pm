package EV::Etcd::STM;

use strict;
use warnings;

use Carp ();
use EV ();
use Scalar::Util ();

our $VERSION = '0.02';

# croaks name the caller of $etcd->stm, not the client's own frames
our @CARP_NOT = ('EV::Etcd', 'EV::Etcd::Future');

# Software transactional memory over etcd, after the Go client's
# client/v3/concurrency/stm.go, for an event loop: reads take a callback.
#
# A run (this package) calls the apply function once per attempt with a
# fresh attempt object (EV::Etcd::STM::Txn). The attempt buffers writes,
# remembers what it read (the read set) and, on commit, sends one txn whose
# compares guard the read set (and, for serializable_snapshot, the write
# set); when they fail the apply function runs again.
#
# Ownership: the attempt holds its run; the run never holds the attempt.
# The user's closures (read callbacks, timers of their own) keep the
# attempt alive; when the last one goes before commit or abort, DESTROY
# fails the run, so the final callback always runs.

my %ISOLATION = map { $_ => 1 } qw(serializable_snapshot serializable repeatable_read read_committed);
my %OPTION    = map { $_ => 1 } qw(isolation retries prefetch backoff);

our $DEFAULT_RETRIES = 16;
our $DEFAULT_BACKOFF = 0.01;
our $MAX_BACKOFF     = 0.5;
our $MAX_SIZE        = 1_048_576;    # the client's limit for keys and values

my %STATUS = (1 => 'CANCELLED', 2 => 'UNKNOWN', 10 => 'ABORTED');

sub _error {
    my ($code, $message) = @_;
    return { code => $code, status => $STATUS{$code}, message => $message,
             source => 'stm', retryable => $code == 10 ? 1 : 0 };
}

sub _is_code { ref $_[0] && Scalar::Util::reftype($_[0]) eq 'CODE' }

# Keys and values as the bytes etcd will hold (a UTF-8 flagged string goes
# out as its UTF-8 encoding), so buffered writes read back as etcd would
# return them.
sub _bytes {
    my $v = "$_[0]";
    utf8::encode($v) if utf8::is_utf8($v);
    return $v;
}

# $client->stm($apply, [\%opts,] $cb), also used by EV::Etcd::Future::stm
# ($name names the method in croaks).
sub _start {
    my ($name, $client, @args) = @_;
    Carp::croak("Usage: \$etcd->stm(\$apply, [\\%opts,] \$cb)") unless @args == 2 || @args == 3;
    my ($apply, $opts, $cb) = @args == 3 ? @args : ($args[0], undef, $args[1]);
    # a live client of this process (croaks as the request methods do
    # otherwise)
    unless (eval { EV::Etcd::_endpoints($client); 1 }) {
        (my $e = $@) =~ s/ at \S+ line \d+\.\n\z//;
        Carp::croak($e);
    }
    Carp::croak("$name: apply must be a code reference") unless _is_code($apply);
    Carp::croak("$name: callback must be a code reference") unless _is_code($cb);
    $opts = {} unless defined $opts;
    Carp::croak("$name: options must be a hash reference") unless ref $opts eq 'HASH';
    for my $k (sort keys %$opts) {
        Carp::croak("$name: unknown option '$k'") unless $OPTION{$k};
    }
    my $iso = $opts->{isolation} // 'serializable_snapshot';
    Carp::croak("$name: isolation must be one of serializable_snapshot, serializable, repeatable_read, read_committed")
        unless !ref $iso && $ISOLATION{$iso};
    my $retries = $opts->{retries} // $DEFAULT_RETRIES;
    Carp::croak("$name: retries must be a non-negative integer")
        unless !ref $retries && $retries =~ /\A[0-9]+\z/;
    my $backoff = $opts->{backoff} // $DEFAULT_BACKOFF;
    Carp::croak("$name: backoff must be a non-negative number of seconds")
        unless !ref $backoff && $backoff =~ /\A(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\z/;
    my @prefetch;
    if (defined $opts->{prefetch}) {
        Carp::croak("$name: prefetch must be an array reference of keys")
            unless ref $opts->{prefetch} eq 'ARRAY';
        for my $k (@{ $opts->{prefetch} }) {
            Carp::croak("$name: prefetch must be an array reference of keys")
                unless defined $k && !ref $k && length $k;
            my $bytes = _bytes($k);
            Carp::croak("$name: prefetch key too large: " . length($bytes) . " bytes (max $MAX_SIZE)")
                if length $bytes > $MAX_SIZE;
            push @prefetch, $bytes;
        }
        my %seen;
        @prefetch = grep { !$seen{$_}++ } @prefetch;
    }
    my $run = bless {
        client    => $client,
        apply     => $apply,
        cb        => $cb,
        isolation => $iso,
        retries   => 0 + $retries,
        backoff   => 0 + $backoff,
        prefetch  => \@prefetch,
        attempts  => 0,
        cache     => undef,    # serializable levels: the failed commit's reads
        done      => 0,
    }, __PACKAGE__;
    # The apply function is a callback: it first runs from the loop.
    $run->_later(0);
    return;
}

# Starts the next attempt after $delay seconds.
sub _later {
    my ($self, $delay) = @_;
    my $w;
    $w = EV::timer($delay, 0, sub {
        undef $w;
        $self->_attempt;
    });
    return;
}

sub _attempt {
    my ($self) = @_;
    return if $self->{done};
    $self->{attempts}++;
    my $txn = EV::Etcd::STM::Txn->_new($self);
    my $apply = $self->{apply};
    if (@{ $self->{prefetch} }) {
        $txn->_read($self->{prefetch}, sub { $txn->_user($apply, $txn) });
    }
    else {
        $txn->_user($apply, $txn);
    }
    return;
}

# The final answer, exactly once, always from a fresh loop callback (so an
# exception of the final callback goes where the loop sends exceptions of
# callbacks, never into this module's own guards).
sub _finish {
    my ($self, @answer) = @_;
    return if $self->{done};
    $self->{done} = 1;
    my $cb = delete $self->{cb};
    delete $self->{apply};
    delete $self->{cache};
    my $w;
    $w = EV::timer(0, 0, sub {
        undef $w;
        $cb->(@answer);
    });
    return;
}

# The commit txn answered.
sub _committed {
    my ($self, $keys, $resp, $err) = @_;
    return if $self->{done};
    return $self->_finish(undef, $err) if $err;
    if ($resp->{succeeded}) {
        my %result = (
            succeeded => 1,
            attempts  => $self->{attempts},
            header    => $resp->{header},
            revision  => $resp->{header}{revision},
            responses => $resp->{responses},
        );
        $result{value} = $self->{value} if exists $self->{value};
        return $self->_finish(\%result, undef);
    }
    # A conflict. The serializable levels read their read set again in the
    # same txn (its failure branch): the next attempt starts from there.
    if (@$keys && $resp->{responses} && @{ $resp->{responses} } == @$keys) {
        my $rev = $resp->{header}{revision};
        my %cache;
        for my $i (0 .. $#$keys) {
            my $range = $resp->{responses}[$i]{response_range} or next;
            $cache{ $keys->[$i] } = { kv => $range->{kvs}[0], rev => $rev };
        }
        $self->{cache} = { rev => $rev, kvs => \%cache };
    }
    if ($self->{attempts} > $self->{retries}) {
        return $self->_finish(undef, _error(10, 'stm: too many conflicts'));
    }
    my $delay = 0;
    if ($self->{backoff} > 0) {
        $delay = $self->{backoff} * 2**($self->{attempts} - 1);
        $delay = $MAX_BACKOFF if $delay > $MAX_BACKOFF;
        $delay = $delay / 2 + rand($delay / 2);
    }
    $self->_later($delay);
    return;
}

sub CLONE_SKIP { 1 }

# ---------------------------------------------------------------------------
# One attempt.

package EV::Etcd::STM::Txn;

use strict;
use warnings;

use Carp ();
use Scalar::Util ();

sub _new {
    my ($class, $run) = @_;
    my $iso = $run->{isolation};
    return bless {
        run      => $run,        # dropped when the attempt ends
        attempt  => $run->{attempts},
        isolation => $iso,
        state    => 'open',      # open, committing, ended
        pinning  => ($iso eq 'serializable_snapshot' || $iso eq 'serializable') ? 1 : 0,
        pin      => undef,       # the revision later reads use
        pin_busy => 0,           # the first read is on its way
        pin_wait => [],          # reads waiting for it
        cache    => undef,       # key => entry, read by the last failed commit
        rset     => {},          # key => { kv => $kv|undef, rev => header revision }
        inflight => {},          # key => [ subs waiting for its read ]
        wset     => {},          # key => { value => $bytes|undef, op => $op }
        worder   => [],          # written keys, first write first
        futures  => [],          # get_f futures not answered yet (weak)
    }, $class;
}

sub _name { "EV::Etcd::STM::Txn::$_[0]" }

sub _reason {
    my ($e) = @_;
    $e = 'unknown error' unless defined $e && length "$e";
    (my $m = "$e") =~ s/\s+\z//;
    return $m;
}

sub _check_open {
    my ($self, $method) = @_;
    Carp::croak(_name($method) . ': not an attempt object')
        unless Scalar::Util::blessed($self) && $self->isa(__PACKAGE__);
    Carp::croak(_name($method) . ': the attempt has ended') unless $self->{state} eq 'open';
    return;
}

sub _check_key {
    my ($method, $key) = @_;
    Carp::croak(_name($method) . ': key must be a non-empty string')
        unless defined $key && !ref $key && length $key;
    $key = EV::Etcd::STM::_bytes($key);
    Carp::croak(_name($method) . ': key too large: ' . length($key) . " bytes (max $MAX_SIZE)")
        if length $key > $MAX_SIZE;
    return $key;
}

sub attempt   { $_[0]{attempt} }
sub isolation { $_[0]{isolation} }
sub is_open   { $_[0]{state} eq 'open' ? 1 : 0 }

# Runs user code (the apply function, a read callback). An exception while
# the attempt is open fails the run; after the attempt ended (the code
# committed or aborted, then died) it goes on to the loop's handler.
sub _user {
    my ($self, $code, @args) = @_;
    return unless $self->{state} eq 'open';
    return if eval { $code->(@args); 1 };
    my $e = $@;
    die $e unless $self->{state} eq 'open';
    $self->_fail(EV::Etcd::STM::_error(2, 'stm: apply function died: ' . _reason($e)));
    return;
}

# Ends the attempt: nothing it asked for reaches user code any more, and
# an attempt object kept by the caller no longer holds the run (and client).
# Returns the run.
sub _end {
    my ($self, $state) = @_;
    $self->{state} = $state;
    my $run = delete $self->{run};
    delete $self->{apply_future};
    $self->{inflight} = {};
    $self->{pin_wait} = [];
    my @f = grep { defined && !$_->is_ready } @{ $self->{futures} };
    $self->{futures} = [];
    $_->fail('stm: the attempt ended', 'stm') for @f;
    return $run;
}

sub _fail {
    my ($self, $err) = @_;
    my $run = $self->_end('ended');
    $run->_finish(undef, $err);
    return;
}

sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT';
    return unless $self->{state} eq 'open' && $self->{run};
    $self->{state} = 'ended';
    $self->{run}->_finish(undef,
        EV::Etcd::STM::_error(2, 'stm: the attempt was dropped without commit or abort'));
    return;
}

# The value of a key as this attempt sees it: [$value] from the write set
# or the read set, or nothing when it has not been read.
sub _known {
    my ($self, $key) = @_;
    if (my $w = $self->{wset}{$key}) { return [ $w->{value} ] }
    if (my $r = $self->{rset}{$key}) { return [ $r->{kv} ? $r->{kv}{value} : undef ] }
    return;
}

sub get {
    my ($self, $key, $cb) = @_;
    _check_open($self, 'get');
    $key = _check_key('get', $key);
    Carp::croak(_name('get') . ': callback must be a code reference')
        unless EV::Etcd::STM::_is_code($cb);
    $self->_read([$key], sub { $self->_user($cb, $self->_known($key)->[0]) });
    return;
}

sub get_f {
    my ($self, $key) = @_;
    _check_open($self, 'get_f');
    $key = _check_key('get_f', $key);
    require EV::Etcd::Future;
    my $f = EV::Etcd::Future::EV->new;
    push @{ $self->{futures} }, $f;
    Scalar::Util::weaken($self->{futures}[-1]);
    $self->_read([$key], sub {
        return if $f->is_ready;
        my $v = $self->_known($key)->[0];
        $self->_user(sub { $f->done($v) });
    });
    return $f;
}

# The future form (EV::Etcd::Future::stm): runs $apply, whose future's
# completion commits or fails the attempt. Called through _user, so an
# exception here fails the run.
sub _apply_future {
    my ($self, $apply) = @_;
    my $f = $apply->($self);
    die "the apply function must return a Future\n"
        unless Scalar::Util::blessed($f) && $f->isa('Future');
    # The future (and through it this attempt) is kept until it is ready or
    # the attempt ends.
    $self->{apply_future} = $f;
    $f->on_ready(sub {
        my ($f) = @_;
        delete $self->{apply_future};
        return unless $self->{state} eq 'open';
        if ($f->is_cancelled) {
            $self->_fail(EV::Etcd::STM::_error(2, 'stm: apply function failed: its future was cancelled'));
        }
        elsif ($f->is_failed) {
            my ($msg, $category, $err) = $f->failure;
            if (defined $category && $category eq 'etcd' && ref $err eq 'HASH') {
                $self->_fail($err);
            }
            else {
                $self->_fail(EV::Etcd::STM::_error(2, 'stm: apply function failed: ' . _reason($msg)));
            }
        }
        else {
            my @v = $f->get;
            $self->{run}{value} = $v[0];
            $self->commit;
        }
    });
    return;
}

sub rev {
    my ($self, $key) = @_;
    Carp::croak(_name('rev') . ': not an attempt object')
        unless Scalar::Util::blessed($self) && $self->isa(__PACKAGE__);
    $key = _check_key('rev', $key);
    my $r = $self->{rset}{$key} or return undef;
    return $r->{kv} ? $r->{kv}{mod_revision} : 0;
}

sub put {
    my ($self, $key, $value, $opts) = @_;
    _check_open($self, 'put');
    $key = _check_key('put', $key);
    Carp::croak(_name('put') . ': value must be defined') unless defined $value;
    $value = EV::Etcd::STM::_bytes($value);
    Carp::croak(_name('put') . ': value too large: ' . length($value) . " bytes (max $MAX_SIZE)")
        if length $value > $MAX_SIZE;
    my %op = (key => $key, value => $value);
    if (defined $opts) {
        Carp::croak(_name('put') . ': options must be a hash reference') unless ref $opts eq 'HASH';
        for my $k (sort keys %$opts) {
            Carp::croak(_name('put') . ": unknown option '$k' (lease, prev_kv, ignore_lease)")
                unless $k eq 'lease' || $k eq 'prev_kv' || $k eq 'ignore_lease';
            Carp::croak(_name('put') . ': lease must be a lease id (a non-negative integer)')
                if $k eq 'lease' && !(defined $opts->{lease} && !ref $opts->{lease} && $opts->{lease} =~ /\A[0-9]+\z/);
            $op{$k} = $k eq 'lease' ? $opts->{lease} : $opts->{$k} ? 1 : 0;
        }
    }
    $self->_write($key, $value, { request_put => \%op });
    return;
}

sub del {
    my ($self, $key) = @_;
    _check_open($self, 'del');
    $key = _check_key('del', $key);
    $self->_write($key, undef, { request_delete_range => { key => $key } });
    return;
}

{ no warnings "once"; *delete = \&del; }

sub _write {
    my ($self, $key, $value, $op) = @_;
    push @{ $self->{worder} }, $key unless $self->{wset}{$key};
    $self->{wset}{$key} = { value => $value, op => $op };
    return;
}

sub abort {
    my ($self, $reason) = @_;
    _check_open($self, 'abort');
    $reason = 'stm: aborted' unless defined $reason && length "$reason";
    $self->_fail(EV::Etcd::STM::_error(1, "$reason"));
    return;
}

sub commit {
    my ($self) = @_;
    _check_open($self, 'commit');
    my $run = $self->_end('committing');
    my $iso = $self->{isolation};
    my @rkeys = sort keys %{ $self->{rset} };
    my @compare;
    if ($iso ne 'read_committed') {
        for my $k (@rkeys) {
            my $kv = $self->{rset}{$k}{kv};
            push @compare, { key => $k, target => 'mod', result => '=',
                             mod_revision => $kv ? $kv->{mod_revision} : 0 };
        }
    }
    if ($iso eq 'serializable_snapshot' && @rkeys) {
        # no write-set key changed since the first read's revision
        my ($first) = sort { $a <=> $b } map { $self->{rset}{$_}{rev} } @rkeys;
        for my $k (@{ $self->{worder} }) {
            push @compare, { key => $k, target => 'mod', result => '<', mod_revision => $first + 1 };
        }
    }
    my @success = map { $self->{wset}{$_}{op} } @{ $self->{worder} };
    # the serializable levels read the read set again when the compares
    # fail, so the next attempt need not
    my @fkeys = $self->{pinning} ? @rkeys : ();
    my @failure = map { { request_range => { key => $_ } } } @fkeys;
    # Everything was checked when it was buffered; should the client still
    # refuse the request, the run ends with that reason instead of never.
    my $sent = eval {
        $run->{client}->txn(\@compare, \@success, \@failure, sub {
            $run->_committed(\@fkeys, @_);
        });
        1;
    };
    $run->_finish(undef, EV::Etcd::STM::_error(2, 'stm: the commit could not be sent: ' . _reason($@)))
        unless $sent;
    return;
}

# Makes sure every key of @$keys is in the read set, then calls $then (not
# when the attempt ended meanwhile; a failed read fails the run).
sub _read {
    my ($self, $keys, $then) = @_;
    my @missing = grep { !$self->{wset}{$_} && !$self->{rset}{$_} } @$keys;
    if (@missing && $self->{pinning} && !defined $self->{pin}) {
        if ($self->{pin_busy}) {
            push @{ $self->{pin_wait} }, sub { $self->_read($keys, $then) };
            return;
        }
        # After a conflict, the failed commit read the read set again: a
        # first read among those keys starts from that revision, and those
        # values serve the keys when they are read (only then do they join
        # the read set). Otherwise they are older than the first read.
        my $cache = delete $self->{run}{cache};
        if ($cache && grep { $cache->{kvs}{$_} } @missing) {
            $self->{pin}   = $cache->{rev};
            $self->{cache} = $cache->{kvs};
        }
    }
    if ($self->{cache}) {
        for my $k (@missing) {
            my $e = delete $self->{cache}{$k} or next;
            $self->{rset}{$k} = $e;
        }
        @missing = grep { !$self->{rset}{$_} } @missing;
    }
    my @fetch   = grep { !$self->{inflight}{$_} } @missing;
    my $pending = 1;
    my $step = sub {
        return if --$pending;
        return unless $self->{state} eq 'open';
        $then->();
    };
    for my $k (@missing) {
        next unless $self->{inflight}{$k};
        $pending++;
        push @{ $self->{inflight}{$k} }, $step;
    }
    if (@fetch) {
        $pending++;
        $self->_fetch(\@fetch, $step);
    }
    # Answers from the attempt's own sets still come from the loop.
    my $w;
    $w = EV::timer(0, 0, sub { undef $w; $step->() });
    return;
}

sub _fetch {
    my ($self, $keys, $done) = @_;
    my %opts;
    my $first = 0;
    if ($self->{pinning}) {
        if (defined $self->{pin}) {
            %opts = (revision => $self->{pin}, serializable => 1);
        }
        else {
            $first = 1;
            $self->{pin_busy} = 1;
        }
    }
    else {
        %opts = (serializable => 1);
    }
    $self->{inflight}{$_} = [$done] for @$keys;
    my @ops = map { { request_range => { key => $_, %opts } } } @$keys;
    my $on_answer = sub {
        my ($resp, $err) = @_;
        return unless $self->{state} eq 'open';
        if ($err) {
            $self->_fail($err);
            return;
        }
        my $rev = $resp->{header}{revision};
        for my $i (0 .. $#$keys) {
            my $range = $resp->{responses}[$i] && $resp->{responses}[$i]{response_range};
            $self->{rset}{ $keys->[$i] } = { kv => $range ? $range->{kvs}[0] : undef, rev => $rev };
        }
        if ($first) {
            $self->{pin} = $rev;
            $self->{pin_busy} = 0;
        }
        my @waiting = map { @{ delete $self->{inflight}{$_} || [] } } @$keys;
        $_->() for @waiting;
        if ($first) {
            my @next = @{ $self->{pin_wait} };
            $self->{pin_wait} = [];
            $_->() for @next;
        }
    };
    my $sent = eval { $self->{run}{client}->txn([], \@ops, [], $on_answer); 1 };
    $self->_fail(EV::Etcd::STM::_error(2, 'stm: a read could not be sent: ' . _reason($@)))
        unless $sent;
    return;
}

sub CLONE_SKIP { 1 }

1;

__END__

=head1 NAME

EV::Etcd::STM - software transactional memory over etcd for EV::Etcd

=head1 SYNOPSIS

    use EV::Etcd;

    my $etcd = EV::Etcd->new(endpoints => ['127.0.0.1:2379']);

    # move 10 from /acct/a to /acct/b, atomically
    $etcd->stm(sub {
        my ($stm) = @_;                  # one attempt
        $stm->get('/acct/a', sub {
            my ($from) = @_;             # the value, undef when absent
            $stm->get('/acct/b', sub {
                my ($to) = @_;
                return $stm->abort('insufficient funds') if ($from // 0) < 10;
                $stm->put('/acct/a', $from - 10);
                $stm->put('/acct/b', ($to // 0) + 10);
                $stm->commit;
            });
        });
    }, { isolation => 'serializable_snapshot', retries => 50 }, sub {
        my ($res, $err) = @_;
        die "transfer failed: $err->{message}\n" if $err;
        print "committed at revision $res->{revision} after $res->{attempts} attempt(s)\n";
    });
    EV::run;

    # with futures (EV::Etcd::Future) and Future::AsyncAwait
    use Future::AsyncAwait;
    my $res = $etcd->future->stm(async sub {
        my ($stm) = @_;
        my $n = await $stm->get_f('/counter');
        $stm->put('/counter', ($n // 0) + 1);
        return $n;
    })->get;

=head1 DESCRIPTION

Software transactional memory after the C<STM> of etcd's Go client package
C<client/v3/concurrency> (C<NewSTM>), for an event loop: an I<apply
function> reads keys, computes, and buffers writes; committing sends them
in one etcd transaction that succeeds only if what the function read is
still current (how strictly depends on the isolation level). When it is
not (a I<conflict>: another client changed a key in between), the apply
function runs again from the start, with fresh reads, up to C<retries>
times. So the function must not have side effects outside the attempt
object that cannot be repeated.

It is started with L<EV::Etcd/stm> (or L<EV::Etcd::Future/stm>); this
module is loaded on first use. Everything it sends goes through the
client's own C<txn> method, so the client's namespace, timeout, retries
and failover apply to each request.

=head1 STARTING A TRANSACTION

    $etcd->stm($apply, [\%opts,] $cb);

Returns nothing. C<$apply> is called (from the loop, never before C<stm>
returns) with a fresh L</"THE ATTEMPT OBJECT"> for each attempt. C<$cb>
is called exactly once, from the loop, with C<($result, undef)> or
C<(undef, $error)>.

Croaks at once, naming C<EV::Etcd::stm> and the argument, when C<$apply>
or C<$cb> is not a code reference, C<\%opts> is not a hash reference, an
option is unknown or has a bad value; with the client's own messages when
the client is not a live client of this process (destroyed, or inherited
over C<fork>); and with a C<Usage:> message for a wrong number of
arguments.

=head2 Options

=over 4

=item isolation => $level

One of the levels below; default C<serializable_snapshot> (the default of
Go's C<NewSTM>).

=item retries => $n

How many times the apply function may run again after a conflict
(default 16): at most C<$n + 1> attempts. C<0> gives a single attempt.

=item backoff => $seconds

The pause before the first retry (default 0.01); it doubles with each
further conflict up to 0.5 s, and a random part of up to half of it is
taken off, so that contending clients spread out. C<0> retries at once,
as Go's STM does.

=item prefetch => \@keys

Keys read in one request before each attempt's apply function runs (Go's
C<WithPrefetch>): all at one revision, in one round trip instead of one per
key. Their reads count as the attempt's reads (they join the read set even
when the apply function does not ask for them, so a change to any of them
is a conflict under every level but C<read_committed>).

=back

=head2 Isolation levels

Each attempt keeps a I<read set> (every key it read from etcd, with the
C<mod_revision> it had, 0 when absent) and a I<write set> (its buffered
puts and deletes, one per key, the last one winning). The commit is one
C<txn>: the write set as its success operations, guarded by compares
that depend on the level.

=over 4

=item serializable_snapshot

As C<serializable>, and also checks the write set: the commit fails if
any key written was modified after the revision of the attempt's first
read, even if the attempt never read it. The whole attempt behaves as if
it ran alone at one instant (no lost updates, no write skew). The
default.

=item serializable

The first read of an attempt pins a revision: every later read is made
at that revision (a consistent snapshot), served by the member the client
talks to. The commit fails if any key read was modified since (its
C<mod_revision> differs from the one read). Keys written without being
read are not checked.

=item repeatable_read

Reads are not pinned to one revision: each is a serializable (local,
possibly slightly stale) read of the newest data the member has. A key
read twice gives the same answer within an attempt (it comes from the
read set). The commit fails if any key read was modified since it was
read, so a stale read only costs a retry.

=item read_committed

Reads as with C<repeatable_read>; the commit checks nothing and never
conflicts. Concurrent read-modify-write cycles can overwrite each other
(lost updates); use it for writes that do not depend on what was read,
or to read several keys with one round trip each and write in one txn.

=back

With the two serializable levels, a commit that fails reads the read set
again in the same round trip (the failure branch of its C<txn>, as Go's
STM does): when the next attempt's first read is one of those keys, the
attempt is pinned to that revision and reads of those keys are answered
from there, without a request (a key joins the new read set only when
the new attempt reads it).

=head2 Results

On success:

    { succeeded => 1, attempts => $n, revision => $rev,
      header => \%header, responses => \@responses }

C<revision> is the revision of the commit (C<< header->{revision} >>),
C<attempts> how many times the apply function ran, C<responses> the
C<txn> responses of the writes (one per written key, in the order the
keys were first written; see L<EV::Etcd/txn>). With the future form, the
committed attempt's result value is also there as C<value>.

On failure the error hash has the keys of L<EV::Etcd/ERRORS>:

=over 4

=item conflicts exhausted

C<< { code => 10, status => 'ABORTED', source => 'stm', message =>
'stm: too many conflicts', retryable => 1 } >>: every attempt conflicted
and C<retries> were used up. Nothing was written.

=item abort

C<< code => 1, status => 'CANCELLED', source => 'stm', retryable => 0 >>
and the reason given to L</abort> as C<message> (C<stm: aborted> when none
was given). Nothing was written by the attempt.

=item exception

C<< code => 2, status => 'UNKNOWN', source => 'stm', retryable => 0 >>,
C<message> C<stm: apply function died: ...> with the exception's text:
the apply function or one of its read callbacks died while the attempt
was open. Nothing was written by the attempt. (An exception thrown after
the attempt called C<commit> or C<abort> does not change the outcome; it
goes to C<$EV::DIED>, like that of any callback.)

=item dropped attempt

The same code and status with the message C<stm: the attempt was dropped
without commit or abort>: the last reference to an open attempt went away
(for example the apply function returned without reading, committing or
aborting, or a read callback returned without doing any of these).

=item a request the client refused

The same code and status with the message C<stm: a read could not be
sent: ...> or C<stm: the commit could not be sent: ...> and the client's
croak: everything is checked when it is buffered, so this happens only
when the client itself cannot be used any more (for example an stm that
was pending across C<fork> and continues in the child).

=item a failed request

The client's error hash of the read or the commit that failed, unchanged
(C<source> C<txn>). A failed read ends the run at once, without retry,
as in Go's STM. A commit that failed with a transport error (the
connection died while it was in flight) may or may not have been applied,
as for any write (L<EV::Etcd/RETRIES AND FAILOVER>). Reads under the
serializable levels are made at the pinned revision: if that revision is
compacted meanwhile, the read fails with etcd's C<OUT_OF_RANGE> error.
The commit is one C<txn> with a compare per key read (and, for
C<serializable_snapshot>, per key written) and an operation per key
written: an attempt with more of either than the server allows
(C<--max-txn-ops>, 128 by default) fails with etcd's C<too many
operations in txn request>, as does a C<prefetch> list that long.

=back

=head1 THE ATTEMPT OBJECT

An C<EV::Etcd::STM::Txn>, valid for one attempt. Methods that act on it
croak with C<EV::Etcd::STM::Txn::METHOD: the attempt has ended> once it
committed, aborted or failed, and name the argument on bad input (keys
must be non-empty strings of at most 1 MiB, values defined and at most
1 MiB). Keys and values are bytes, as everywhere in L<EV::Etcd>.

=head2 get

    $stm->get($key, sub { my ($value) = @_; ... });

Calls the callback, from the loop, with the key's value, C<undef> when the
key does not exist (or this attempt deleted it). A key this attempt wrote
reads back the buffered value; a key it read before reads back what it
read (from the read set, with no request); anything else is read from
etcd and joins the read set. Reads issued together go out together, except
that under the serializable levels the first read of an attempt is
answered before the others are sent (they use its revision).

The callback runs only while the attempt is open: when the read fails the
whole run fails with that error, and an answer arriving after the attempt
ended (for example after C<commit> or C<abort> in another callback) is
dropped. An exception thrown by it fails the run (see L</Results>).

=head2 get_f

    my $f = $stm->get_f($key);

The same as a future (L<EV::Etcd::Future>): done with the value (or
undef). When the read fails it fails like the adapter's futures, with
C<($message, 'etcd', $error)>; when the attempt ends before the answer it
fails with C<('stm: the attempt ended', 'stm')>. Loads
L<EV::Etcd::Future> (and L<Future>).

=head2 put

    $stm->put($key, $value, [\%opts]);

Buffers a put. Options: C<lease> (a lease id, checked at once),
C<prev_kv>, C<ignore_lease> (as for L<EV::Etcd/put>; unknown ones croak).
With C<prev_kv> the previous entry comes back in the result's
C<responses>.

=head2 del, delete

    $stm->del($key);    # or $stm->delete($key)

Buffers the deletion of one key. Later gets of it in the attempt read
C<undef>.

=head2 rev

    my $rev = $stm->rev($key);

The C<mod_revision> the attempt read for the key: 0 when it did not
exist, C<undef> when the attempt has not read it from etcd (a key only
written, or not read yet). Answers at once and also works after the
attempt ended.

=head2 commit

    $stm->commit;

Ends the attempt and sends its writes in one C<txn>, guarded as the
isolation level says. On success the run's callback gets the result; on a
conflict the apply function runs again (after the backoff) with a new
attempt object, or the run fails with C<stm: too many conflicts>. A
read-only attempt commits too (nothing is written; the compares still
tell whether what it read was consistent).

=head2 abort

    $stm->abort([$reason]);

Ends the attempt and the run without writing anything: the run's callback
gets the abort error with C<$reason> as the message. Not retried.

=head2 attempt, isolation, is_open

The attempt's number (1 for the first), the run's isolation level, and
whether the attempt is still open.

=head1 SEE ALSO

L<EV::Etcd>, L<EV::Etcd::Future>; C<client/v3/concurrency/stm.go> in
etcd's Go client.

=cut

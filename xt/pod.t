use strict;
use warnings;
use Test::More;
use B ();
use Pod::Checker ();
use File::Find ();

# Author test: the POD of every module is clean (what podchecker reports
# at podchecker's default level), and every public method is documented: its name appears in an =head2 or
# =item line of its module's POD. Needs the built module (prove -b xt/).

my @files;
File::Find::find(sub { push @files, $File::Find::name if /\.pm\z/ }, 'lib');
@files = sort @files;
ok(scalar @files, 'modules found');

for my $file (@files) {
    my $checker = Pod::Checker->new(-warnings => 1, -quiet => 1);
    $checker->parse_from_file($file, \my $out);
    is($checker->num_errors, 0, "$file: no POD errors");
    is($checker->num_warnings, 0, "$file: no POD warnings");
}

require EV::Etcd;
require EV::Etcd::Future if eval { require Future; 1 };

# the words of =head2 / =item lines
sub documented {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    my %doc;
    while (<$fh>) {
        next unless /^=(?:head2|item)\s+(.*)/;
        $doc{$_} = 1 for $1 =~ /([A-Za-z_][A-Za-z0-9_]*)/g;
    }
    return \%doc;
}

# subs defined in the package itself (XSUBs included), not imported ones
sub public_methods {
    my ($pkg) = @_;
    no strict 'refs';
    my @names;
    for my $name (sort keys %{"${pkg}::"}) {
        next if $name =~ /^_/ || $name =~ /^[A-Z_]+\z/;    # private, DESTROY, CLONE_SKIP
        next if $name eq 'bootstrap';                    # XSLoader's
        my $code = *{"${pkg}::$name"}{CODE} or next;
        my $gv = B::svref_2object($code)->GV;
        next if $gv->isa('B::GV') && $gv->STASH->NAME ne $pkg;
        push @names, $name;
    }
    return @names;
}

require EV::Etcd::Session;
require EV::Etcd::Mutex;
require EV::Etcd::Election;

my %pkg_file = map {
    my $p = $_;
    (my $f = "lib/$p.pm") =~ s{::}{/}g;
    ($p => $f);
} grep { $_ ne 'EV::Etcd::Future' || $INC{'EV/Etcd/Future.pm'} }
  qw(EV::Etcd EV::Etcd::Watch EV::Etcd::Keepalive EV::Etcd::Observe EV::Etcd::Future
     EV::Etcd::Session EV::Etcd::Mutex EV::Etcd::Election);
# classes that live in another one's file
$pkg_file{'EV::Etcd::Session::Acquire'}   = 'lib/EV/Etcd/Session.pm';
$pkg_file{'EV::Etcd::Election::Observer'} = 'lib/EV/Etcd/Election.pm';
require EV::Etcd::STM;
$pkg_file{'EV::Etcd::STM::Txn'} = 'lib/EV/Etcd/STM.pm';

for my $pkg (sort keys %pkg_file) {
    my $file = $pkg_file{$pkg};
    next unless -f $file;
    my $doc = documented($file);
    my @methods = public_methods($pkg);
    ok(scalar @methods, "$pkg has public methods");
    my @missing = grep { !$doc->{$_} } @methods;
    is_deeply(\@missing, [], "$pkg: every public method is documented");
}

done_testing;

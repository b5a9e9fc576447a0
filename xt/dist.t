use strict;
use warnings;
use Test::More;

# Author test: MANIFEST lists every file git tracks (but CI files), and the
# Rust crate's version matches the module's ($EV::Etcd::VERSION 0.0x is
# crate version 0.x.0).

sub read_lines {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    return grep { length && !/^#/ } map { chomp; s/\s.*//r } <$fh>;
}

my %manifest = map { $_ => 1 } read_lines('MANIFEST');
SKIP: {
    my @tracked = grep { !m{^\.ci/} && $_ ne '.gitignore' } split /\n/, `git ls-files 2>/dev/null`;
    skip 'not a git checkout', 1 unless @tracked;
    is_deeply([ grep { !$manifest{$_} } @tracked ], [], 'MANIFEST lists every tracked file');
}
is_deeply([ grep { !-e $_ } sort keys %manifest ], [], 'every MANIFEST entry exists');

open my $pm, '<', 'lib/EV/Etcd.pm' or die $!;
my ($version) = map { /^our \$VERSION = '([\d.]+)';/ ? $1 : () } <$pm>;
ok($version, "module version $version");
open my $toml, '<', 'Cargo.toml' or die $!;
my ($crate) = map { /^version = "([\d.]+)"/ ? $1 : () } <$toml>;
my ($maj, $min) = $version =~ /^(\d+)\.(\d+)\z/;
is($crate, sprintf('%d.%d.0', $maj, $min), 'Cargo.toml version matches');

done_testing;

#!/usr/bin/env perl
# Auth: create root and an application user, enable auth, then use a client
# that logs in by itself with user/password, and switch auth off again.
#
#   perl -Mblib eg/auth.pl
#
# Always starts a throwaway etcd on a free loopback port: enabling auth
# changes the whole server, so this never touches an existing cluster.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EV;
use EV::Etcd;
use EtcdTest;

EtcdTest::etcd_binary() or die "no etcd found: install etcd-server\n";
my $server = EtcdTest->start;
my @ep     = (endpoints => [ $server->endpoint ], timeout => 5);
print "started a throwaway etcd on ", $server->endpoint, "\n";

# Runs the steps one after the other on $client; dies on the first error.
sub run_steps {
    my ($client, @steps) = @_;
    my $next;
    $next = sub {
        my $step = shift @steps or return;
        my ($method, @args) = @$step;
        $client->$method(@args, sub {
            my ($resp, $err) = @_;
            die "$method: $err->{message}\n" if $err;
            print "$method: ok\n";
            $next->();
        });
    };
    $next->();
    EV::run;
}

my $admin = EV::Etcd->new(@ep);
run_steps($admin,
    [ user_add              => 'root', 'root-secret' ],
    [ role_add              => 'root' ],
    [ user_grant_role       => 'root', 'root' ],
    [ user_add              => 'app', 'app-secret' ],
    [ role_add              => 'app' ],
    [ role_grant_permission => 'app', 'READWRITE', '/app/', '/app0' ],
    [ user_grant_role       => 'app', 'app' ],
    [ 'auth_enable' ],
);

# A client with credentials authenticates before its first request.
my $app = EV::Etcd->new(@ep, user => 'app', password => 'app-secret');
$app->put('/app/greeting', 'hello', sub {
    my ($resp, $err) = @_;
    die "put: $err->{message}\n" if $err;
    print "app wrote /app/greeting at revision $resp->{header}{revision}\n";
    $app->put('/elsewhere', 'x', sub {
        my (undef, $err) = @_;
        print "app outside its range: $err->{status} ($err->{message})\n";
    });
});
EV::run;

$admin->auth_status(sub {
    my ($resp, $err) = @_;
    die "auth_status: $err->{message}\n" if $err;
    print "auth enabled: $resp->{enabled}\n";
});
EV::run;

# Turning auth off needs root.
my $root = EV::Etcd->new(@ep, user => 'root', password => 'root-secret');
run_steps($root, ['auth_disable']);

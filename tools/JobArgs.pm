# JobArgs.pm: the command line shared by run.pl and slurm.pl (one interface, two back ends).
#
#   my $job = JobArgs::parse($me, \&usage_text, ['dry-run']);   # consumes @ARGV
#   $job->{opt}{gpu}, $job->{flag}{'dry-run'}, $job->{jobvar}, $job->{first}, $job->{last},
#   $job->{is_array}, $job->{logfile}, $job->{cmd}
#
# Options take a value (--name V or --name=V, '_' may stand for '-'); unknown ones are warned
# about and ignored, as Kaldi does. Resource options stay undefined unless given.
package JobArgs;

use strict;
use warnings;

my @VALUE_OPTIONS = qw(max-jobs-run num-threads mem gpu time partition config);

sub usage_error {
    my ($me, $msg) = @_;
    print STDERR "$me: $msg\n" if defined $msg;
    print STDERR "Usage: $me [options] [JOB=1:N] <log-file> <command> [args...]  (see $me --help)\n";
    exit 1;
}

# Join the words as Kaldi does: words without blanks as they are, others quoted; a command
# given as one single argument goes to bash unchanged.
sub join_command {
    my @words = @_;
    return $words[0] if @words == 1;
    my @out;
    for my $w (@words) {
        if ($w =~ /^\S+$/) { push @out, $w; }
        elsif ($w !~ /"/) { push @out, "\"$w\""; }
        else { (my $q = $w) =~ s/'/'\\''/g; push @out, "'$q'"; }
    }
    return join(' ', @out);
}

sub parse {
    my ($me, $usage_text, $flags) = @_;
    my %takes_value = map { $_ => 1 } @VALUE_OPTIONS;
    my %is_flag = map { $_ => 1 } @{ $flags || [] };
    my (%opt, %flag);
    while (@ARGV && $ARGV[0] =~ /^-/) {
        my $arg = shift @ARGV;
        if ($arg eq '-h' || $arg eq '--help') { print $usage_text->(); exit 0; }
        my ($name, $value);
        if ($arg =~ /^--([^=]+)=(.*)$/s) {
            ($name, $value) = ($1, $2);
        } elsif ($arg =~ /^--(.+)$/s) {
            $name = $1;
        } elsif ($arg eq '-tc') {    # old Kaldi spelling of --max-jobs-run
            $name = 'max-jobs-run';
        } elsif ($arg eq '-p') {
            $name = 'partition';
        } else {
            usage_error($me, "unknown option '$arg'");
        }
        $name =~ tr/_/-/;
        if ($is_flag{$name} && !defined $value) { $flag{$name} = 1; next; }
        if (!defined $value) {
            usage_error($me, "option $arg needs a value") unless @ARGV;
            $value = shift @ARGV;
        }
        if (!$takes_value{$name}) {
            print STDERR "$me: warning: ignoring unknown option --$name $value\n";
            next;
        }
        $opt{$name} = $value;
    }
    for my $name ('max-jobs-run', 'num-threads') {
        usage_error($me, "--$name must be a positive integer, got '$opt{$name}'")
            if defined $opt{$name} && $opt{$name} !~ /^[1-9]\d*$/;
    }
    usage_error($me, "--gpu must be a non-negative integer, got '$opt{gpu}'")
        if defined $opt{gpu} && $opt{gpu} !~ /^\d+$/;

    my ($jobvar, $first, $last, $is_array) = (undef, 1, 1, 0);
    if (@ARGV && $ARGV[0] =~ /^([A-Za-z_]\w*)=(\d+):(\d+)$/) {
        ($jobvar, $first, $last, $is_array) = ($1, $2, $3, 1);
        shift @ARGV;
        usage_error($me, "bad job range $jobvar=$first:$last (end before start)") if $last < $first;
    } elsif (@ARGV && $ARGV[0] =~ /^([A-Za-z_]\w*)=(\d+)$/) {
        ($jobvar, $first, $last, $is_array) = ($1, $2, $2, 1);
        shift @ARGV;
    }
    usage_error($me, 'missing <log-file> and <command>') if @ARGV < 2;
    my $logfile = shift @ARGV;
    if ($is_array && $last > $first && index($logfile, $jobvar) < 0) {
        usage_error($me, "running jobs $jobvar=$first:$last into a single log file '$logfile' "
            . "(put $jobvar in the log-file name)");
    }
    return { opt => \%opt, flag => \%flag, jobvar => $jobvar, first => $first, last => $last,
             is_array => $is_array, logfile => $logfile, cmd => join_command(@ARGV) };
}

1;

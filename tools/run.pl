#!/usr/bin/env perl
# run.pl: run a command, or an array of jobs, in parallel on the local machine.
# Kaldi/ESPnet-compatible job launcher (same interface as slurm.pl).
#
#   run.pl [options] JOB=1:N <log-file> <command> [args...]
#   run.pl [options] <log-file> <command> [args...]
#
# In the array form, job i (1..N) runs the command with every "JOB" in the
# log-file name and in the command replaced by i. Each log file holds:
#   # <command>
#   # Started at <date>
#   #
#   <stdout and stderr of the command>
#   # Accounting: time=<seconds> threads=<n>
#   # Ended (code <rc>) at <date>, elapsed time <seconds> seconds
# Exit status: 0 if every job succeeded, else 1 with a message on stderr.
# Run `run.pl --help` for the options.

use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use POSIX qw(strftime setpgid :sys_wait_h);
use FindBin qw($RealBin);
use lib $RealBin;
use JobArgs;

my $me = 'run.pl';

sub usage_text {
    return <<"END";
Usage: $me [options] [JOB=1:N] <log-file> <command> [args...]

Runs <command> through bash on this machine, with its stdout and stderr going
to <log-file> (its directory is created). With JOB=1:N, runs N jobs in
parallel; in job i every "JOB" in <log-file> and in the command is replaced by
i (any variable name works, e.g. N=1:4 replaces "N"; JOB=3 runs job 3 only).

The words of the command are joined with spaces; a word containing blanks is
quoted. So shell syntax must come as separate words, e.g.
    $me JOB=1:4 log/x.JOB.log prog data.JOB \\| sort \\> out.JOB
A command given as one single argument is passed to bash unchanged:
    $me log/x.log "prog data | sort > out"
The commands read from /dev/null.

Options (also accepted as --name=value; '_' may be used for '-'):
  --max-jobs-run K   run at most K jobs at a time (default: number of CPUs)
  --num-threads T    threads each job uses; only recorded in the log here
  --mem M            memory per job (e.g. 4G); ignored by $me
  --gpu G            GPUs per job; ignored by $me (no devices are assigned)
  --time T           time limit (Slurm syntax); ignored by $me
  --partition P      queue/partition; ignored by $me
  --config FILE      cluster configuration; ignored by $me
  -h, --help         print this help and exit

Exit status: 0 if all jobs succeed; otherwise 1, and
  "$me: K / N failed, log is in <log-file with JOB replaced by *>" on stderr.
END
}

sub now { return strftime('%a %b %e %H:%M:%S %Z %Y', localtime) }

# ---- options, job range, log file, command ---------------------------------

my $job = JobArgs::parse($me, \&usage_text);
my %opt = %{ $job->{opt} };
$opt{'num-threads'} //= 1;
my ($jobvar, $first, $last, $is_array, $logfile, $cmd) = @$job{qw(jobvar first last is_array logfile cmd)};

sub for_job {
    my ($text, $id) = @_;
    $text =~ s/\Q$jobvar\E/$id/g if defined $jobvar;
    return $text;
}

sub num_cpus {
    my $n = 0;
    if (open(my $fh, '<', '/proc/cpuinfo')) {
        while (<$fh>) { $n++ if /^processor\s*:/; }
        close $fh;
    }
    if (!$n) { my $o = `nproc 2>/dev/null`; $n = $1 if defined $o && $o =~ /^(\d+)/; }
    return $n || 32;
}
my $max_jobs = $opt{'max-jobs-run'} // num_cpus();

# ---- running ---------------------------------------------------------------

# Child: run job $id with its output into its log file; exits with the job's code.
sub run_job {
    my ($id) = @_;
    setpgid(0, 0);
    my $log = for_job($logfile, $id);
    my $jcmd = for_job($cmd, $id);
    my $dir = dirname($log);
    eval { make_path($dir) unless -d $dir; 1 }
        or do { print STDERR "$me: cannot create log directory $dir: $@"; POSIX::_exit(1); };
    open(my $lf, '>', $log) or do { print STDERR "$me: cannot write log file $log: $!\n"; POSIX::_exit(1); };
    print $lf "# $jcmd\n# Started at " . now() . "\n#\n";
    $lf->flush;
    my $start = time;
    open(STDIN, '<', '/dev/null');
    open(STDOUT, '>&', $lf) or POSIX::_exit(1);
    open(STDERR, '>&', $lf) or POSIX::_exit(1);
    my $status = system('bash', '-c', $jcmd);
    my $elapsed = time - $start;
    my ($code, $desc);
    if ($status == -1) { $code = 127; $desc = "code 127; cannot run bash: $!"; }
    elsif ($status & 127) { my $sig = $status & 127; $code = 128 + $sig; $desc = "code $code; signal $sig"; }
    else { $code = $status >> 8; $desc = "code $code"; }
    print $lf "# Accounting: time=$elapsed threads=$opt{'num-threads'}\n";
    print $lf "# Ended ($desc) at " . now() . ", elapsed time $elapsed seconds\n";
    close $lf;
    POSIX::_exit($code > 255 ? 255 : $code);
}

my %running;    # pid => job id
my $failed = 0;

# Stop the jobs (their whole process groups) if we are interrupted.
sub stop_all {
    my ($sig) = @_;
    for my $pid (keys %running) { kill('TERM', -$pid) or kill('TERM', $pid); }
    1 while waitpid(-1, 0) > 0;
    print STDERR "$me: interrupted (SIG$sig), stopped the running jobs\n";
    exit 1;
}
$SIG{$_} = \&stop_all for qw(INT TERM HUP);

sub reap_one {
    my $pid = waitpid(-1, 0);
    return if $pid <= 0 || !exists $running{$pid};
    delete $running{$pid};
    $failed++ if $? != 0;
}

STDOUT->flush; STDERR->flush;
for my $id ($first .. $last) {
    reap_one() while keys(%running) >= $max_jobs;
    my $pid = fork();
    if (!defined $pid) {
        print STDERR "$me: fork failed: $!\n";
        $failed++;
        next;
    }
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        run_job($id);
    }
    setpgid($pid, $pid);
    $running{$pid} = $id;
}
reap_one() while keys %running;

if ($failed) {
    my $njobs = $last - $first + 1;
    if ($is_array) {
        (my $pattern = $logfile) =~ s/\Q$jobvar\E/*/g;
        print STDERR "$me: $failed / $njobs failed, log is in $pattern\n";
    } else {
        print STDERR "$me: job failed, log is in $logfile\n";
    }
    exit 1;
}
exit 0;

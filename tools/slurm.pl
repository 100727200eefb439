#!/usr/bin/env perl
# slurm.pl: run a command, or an array of jobs, on a Slurm cluster and wait for it.
# Kaldi/ESPnet-compatible job launcher with the same interface as run.pl:
#
#   slurm.pl [options] JOB=1:N <log-file> <command> [args...]
#   slurm.pl [options] <log-file> <command> [args...]
#
# Writes a batch script to <log-dir>/q/<name>.sh and submits it with one
#   sbatch --parsable --wait [--array=1-N%K] [resource options] <log-dir>/q/<name>.sh
# Task i runs the command through bash with "JOB" replaced by i
# ($SLURM_ARRAY_TASK_ID), writing the same log file as run.pl (header
# "# <command>" / "# Started at", footer "# Accounting: time=.. threads=.." /
# "# Ended (code <rc>) at ..") and its exit code to <log-dir>/q/<name>.<i>.status.
# When sbatch returns, every status file is checked: exit 0 if all jobs
# succeeded, else 1 naming the failed logs.
# Environment: SBATCH / SCANCEL name the sbatch / scancel programs (default
# sbatch, scancel); SLURM_PL_STATUS_WAIT is how many seconds to wait for status
# files still missing after sbatch returns (shared file systems lag; default 10).
# Run `slurm.pl --help` for the options.

use strict;
use warnings;
use Cwd qw(getcwd);
use File::Basename qw(dirname basename);
use File::Path qw(make_path);
use FindBin qw($RealBin);
use lib $RealBin;
use JobArgs;

my $me = 'slurm.pl';

sub usage_text {
    return <<"END";
Usage: $me [options] [JOB=1:N] <log-file> <command> [args...]

Submits <command> to Slurm as one sbatch job (a job array with JOB=1:N), waits
for it to finish and checks that every job succeeded. Job i runs the command
through bash with every "JOB" in <log-file> and in the command replaced by i
(any variable name works, e.g. N=1:4 replaces "N"). The words of the command
are joined as by run.pl: shell syntax comes as separate words (prog \\| sort),
or give the whole command as one argument. The command's stdout and stderr go
to <log-file>; the batch script, Slurm's own output and the per-job status
files go to <log-dir>/q/.

Options (also accepted as --name=value; '_' may be used for '-'):
  --max-jobs-run K   at most K jobs of the array at a time    (--array=1-N%K)
  --num-threads T    CPUs per job                              (--cpus-per-task=T)
  --mem M            memory per job, e.g. 4G                   (--mem=M)
  --gpu G            GPUs per job; 0 requests none             (--gres=gpu:G)
  --time T           time limit, e.g. 4:00:00                  (--time=T)
  --partition P, -p P  partition                               (--partition=P)
  --config FILE      extra sbatch arguments: each line of FILE holds one or
                     more of them, split at blanks (no quoting), e.g.
                     "--account=abc" or "--qos=high --constraint=a100";
                     blank lines and lines starting with # are skipped. They
                     come before the options above, which override them.
  --dry-run          print the sbatch command and the batch script; submit nothing
  -h, --help         print this help and exit

Environment: SBATCH and SCANCEL override the sbatch and scancel programs;
SLURM_PL_STATUS_WAIT (seconds, default 10) is how long to wait for status
files that are missing when sbatch returns. Interrupting $me cancels the job.

Exit status: 0 if all jobs succeed; otherwise 1, and
  "$me: K / N failed, log is in <log-file with JOB replaced by *>" on stderr.
END
}

# Quote a string for bash (only when needed, for display).
sub shell_quote {
    my ($s) = @_;
    return $s if $s =~ m{^[\w@%+=:,./-]+$};
    (my $q = $s) =~ s/'/'\\''/g;
    return "'$q'";
}

# Always single-quote (for the batch script).
sub sq {
    (my $q = $_[0]) =~ s/'/'\\''/g;
    return "'$q'";
}

# ---- options, job range, log file, command ---------------------------------

my $job = JobArgs::parse($me, \&usage_text, ['dry-run']);
my %opt = %{ $job->{opt} };
my $dry_run = $job->{flag}{'dry-run'};
my $threads = $opt{'num-threads'} // 1;
my ($jobvar, $first, $last, $is_array, $logfile, $cmd) = @$job{qw(jobvar first last is_array logfile cmd)};

# ---- file names --------------------------------------------------------------

my $logdir = dirname($logfile);
my $qdir = "$logdir/q";
my $name = basename($logfile);
if ($is_array) { $name =~ s/\.\Q$jobvar\E(?=\.|$)//g; $name =~ s/\Q$jobvar\E//g; }
$name =~ s/\.log$//;
$name = 'job' if $name eq '' || $name eq '.';
my $script = "$qdir/$name.sh";
# Status file of job $id: <log-dir>/q/<name>.<id>.status (<name>.status without JOB=).
sub status_file {
    my ($id) = @_;
    return $is_array ? "$qdir/$name.$id.status" : "$qdir/$name.status";
}

my @extra;
if (defined $opt{config}) {
    open(my $fh, '<', $opt{config})
        or do { print STDERR "$me: cannot read config file $opt{config}: $!\n"; exit 1; };
    while (my $line = <$fh>) {
        next if $line =~ /^\s*(#|$)/;
        push @extra, split(' ', $line);
    }
    close $fh;
}

my @sbatch_args = ('--parsable', '--wait', "--job-name=$name",
    '--output=' . ($is_array ? "$qdir/$name.%a.out" : "$qdir/$name.out"), @extra);
push @sbatch_args, "--partition=$opt{partition}" if defined $opt{partition};
push @sbatch_args, "--time=$opt{time}" if defined $opt{time};
push @sbatch_args, "--mem=$opt{mem}" if defined $opt{mem};
push @sbatch_args, "--cpus-per-task=$opt{'num-threads'}" if defined $opt{'num-threads'};
push @sbatch_args, "--gres=gpu:$opt{gpu}" if defined $opt{gpu} && $opt{gpu} > 0;
if ($is_array) {
    my $array = "--array=$first-$last";
    $array .= "%$opt{'max-jobs-run'}" if defined $opt{'max-jobs-run'};
    push @sbatch_args, $array;
}
push @sbatch_args, $script;
my $sbatch = (defined $ENV{SBATCH} && $ENV{SBATCH} ne '') ? $ENV{SBATCH} : 'sbatch';
my $sbatch_line = join(' ', map { shell_quote($_) } $sbatch, @sbatch_args);

# ---- batch script ------------------------------------------------------------

my $text = "#!/usr/bin/env bash\n"
    . "# Batch script written by $me for " . ($is_array ? "$jobvar=$first:$last " : '') . "$logfile\n"
    . "# Submitted with: $sbatch_line\n"
    . 'cd ' . sq(getcwd()) . " || exit 1\n";
if ($is_array) {
    $text .= "id=\${SLURM_ARRAY_TASK_ID:?must run as a task of a Slurm job array}\n"
        . 'log=' . sq($logfile) . "\nlog=\${log//$jobvar/\$id}\n"
        . 'cmd=' . sq($cmd) . "\ncmd=\${cmd//$jobvar/\$id}\n"
        . 'status=' . sq("$qdir/$name.") . "\"\$id\".status\n";
} else {
    $text .= 'log=' . sq($logfile) . "\ncmd=" . sq($cmd) . "\nstatus=" . sq(status_file(1)) . "\n";
}
$text .= <<"END";
rm -f "\$status"
mkdir -p "\$(dirname "\$log")" || exit 1
{
  printf '# %s\\n' "\$cmd"
  printf '# Started at %s\\n' "\$(date)"
  printf '# Running on %s (Slurm job %s%s)\\n' "\$(hostname)" "\${SLURM_JOB_ID:-?}" "\${SLURM_ARRAY_TASK_ID:+, task \$SLURM_ARRAY_TASK_ID}"
  printf '#\\n'
} > "\$log" || exit 1
start=\$(date +%s)
bash -c "\$cmd" < /dev/null >> "\$log" 2>&1
rc=\$?
end=\$(date +%s)
{
  printf '# Accounting: time=%s threads=%s\\n' "\$((end - start))" $threads
  printf '# Ended (code %s) at %s, elapsed time %s seconds\\n' "\$rc" "\$(date)" "\$((end - start))"
} >> "\$log"
echo "\$rc" > "\$status.tmp" && mv -f "\$status.tmp" "\$status"
exit "\$rc"
END

if ($dry_run) {
    print "# sbatch command:\n$sbatch_line\n# batch script $script:\n$text";
    exit 0;
}

# ---- submit and wait -----------------------------------------------------------

eval { make_path($qdir) unless -d $qdir; 1 }
    or do { print STDERR "$me: cannot create $qdir: $@"; exit 1; };
open(my $sf, '>', $script) or do { print STDERR "$me: cannot write $script: $!\n"; exit 1; };
print $sf $text;
close $sf or do { print STDERR "$me: cannot write $script: $!\n"; exit 1; };
chmod 0755, $script;
unlink(status_file($_)) for $first .. $last;

my ($jobid, $sbatch_pid);
sub on_signal {
    my ($sig) = @_;
    kill('TERM', $sbatch_pid) if $sbatch_pid;
    if (defined $jobid) {
        my $scancel = (defined $ENV{SCANCEL} && $ENV{SCANCEL} ne '') ? $ENV{SCANCEL} : 'scancel';
        system($scancel, $jobid);
        print STDERR "$me: interrupted (SIG$sig), cancelled Slurm job $jobid\n";
    } else {
        print STDERR "$me: interrupted (SIG$sig)\n";
    }
    exit 1;
}
$SIG{$_} = \&on_signal for qw(INT TERM HUP);

my $out;
{
    no warnings 'exec';
    $sbatch_pid = open($out, '-|', $sbatch, @sbatch_args);
}
if (!$sbatch_pid) {
    print STDERR "$me: cannot run $sbatch: $!\n";
    exit 1;
}
while (my $line = <$out>) {
    if (!defined $jobid && $line =~ /^(\d+)(;\S*)?\s*$/) { $jobid = $1; next; }
    print STDERR $line;
}
close $out;
my $sbatch_rc = $? >> 8;
$sbatch_pid = undef;

if (!defined $jobid && $sbatch_rc != 0) {
    print STDERR "$me: submission failed (sbatch exit code $sbatch_rc): $sbatch_line\n";
    exit 1;
}

my @ids = ($first .. $last);
my $wait = $ENV{SLURM_PL_STATUS_WAIT} // 10;
$wait = 10 if $wait !~ /^\d+(\.\d*)?$/;
my $deadline = time + $wait;
while (grep { !-e status_file($_) } @ids) {
    last if time >= $deadline;
    select(undef, undef, undef, 0.5);
}

my (@failed, @missing);
for my $id (@ids) {
    my $f = status_file($id);
    if (open(my $fh, '<', $f)) {
        my $rc = <$fh>;
        close $fh;
        push @failed, $id unless defined $rc && $rc =~ /^\s*0\s*$/;
    } else {
        push @missing, $id;
    }
}
exit 0 if !@failed && !@missing;

my $jobdesc = defined $jobid ? "Slurm job $jobid" : 'the Slurm job';
my $njobs = scalar @ids;
my $nbad = @failed + @missing;
my $pattern = $logfile;
$pattern =~ s/\Q$jobvar\E/*/g if $is_array;
if (@missing) {
    my $out_pattern = $is_array ? "$qdir/$name.*.out" : "$qdir/$name.out";
    print STDERR "$me: no status file from job(s) " . join(',', @missing)
        . " of $jobdesc (killed, out of time or memory, or never started?); "
        . "see $out_pattern\n";
}
if ($is_array) {
    print STDERR "$me: $nbad / $njobs failed, log is in $pattern\n";
} else {
    print STDERR "$me: job failed, log is in $logfile\n";
}
exit 1;

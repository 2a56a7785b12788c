#!/usr/bin/perl
# The spawn helper in Perl (perl-base modules only): the same job as src/executors/spawn-helper.ts,
# the same messages over the same channel (Node.js IPC, one JSON text a line), in a process of
# ~9 MiB instead of ~45. See that file for what it does and why; src/executors/spawner.ts picks one.
use strict;
use warnings;
use POSIX qw(:sys_wait_h setsid _exit);
use Fcntl qw(F_SETFD FD_CLOEXEC O_RDONLY);
use Errno ();
use Config;
use File::Path qw(remove_tree make_path);
use IO::Select;

my $nice = (($ARGV[0] // '') =~ /^--nice=(\d+)$/) ? $1 : 0;
my @SIGNAME = split ' ', $Config{sig_name};
my %ERRNAME;
for my $k (@{$Errno::EXPORT_TAGS{POSIX}}) {
  my $v = eval { no strict 'refs'; &{"Errno::$k"}() };
  $ERRNAME{$v} //= $k if defined $v;
}

my $ipc_fd = $ENV{NODE_CHANNEL_FD};
exit 0 unless defined $ipc_fd;
delete @ENV{qw(NODE_CHANNEL_FD NODE_CHANNEL_SERIALIZATION_MODE)};
open(my $ipc, '+<&=', $ipc_fd) or exit 0;
binmode $ipc;
# Node.js may hand the channel over non-blocking: a report is written whole, waiting if it must
$ipc->blocking(1);
fcntl($ipc, F_SETFD, FD_CLOEXEC);

# ---- JSON, as far as the messages need it (byte strings in, byte strings out) ----
# (named subs over one string: closures that call themselves would never be freed)
our ($S, $P);
sub jparse { local ($S, $P) = ($_[0], 0); return jval() }
sub jws { $P++ while $P < length($S) && substr($S, $P, 1) =~ /\s/ }
sub jstring {
  $P++;
  my $out = '';
  while (1) {
    die "bad JSON\n" if $P >= length $S;
    if (substr($S, $P) =~ /^([^"\\]+)/) { $out .= $1; $P += length $1; next }
    my $c = substr($S, $P++, 1);
    return $out if $c eq '"';
    my $e = substr($S, $P++, 1);
    if ($e eq 'u') {
      my $cp = hex substr($S, $P, 4); $P += 4;
      if ($cp >= 0xD800 && $cp < 0xDC00 && substr($S, $P, 2) eq '\\u') {
        my $lo = hex substr($S, $P + 2, 4);
        if ($lo >= 0xDC00 && $lo < 0xE000) { $cp = 0x10000 + (($cp - 0xD800) << 10) + ($lo - 0xDC00); $P += 6 }
      }
      my $ch = chr $cp; utf8::encode($ch); $out .= $ch;
    } else {
      $out .= { b => "\b", f => "\f", n => "\n", r => "\r", t => "\t" }->{$e} // $e;
    }
  }
}
sub jval {
  jws();
  my $c = substr($S, $P, 1);
  if ($c eq '{') {
    $P++; my %h; jws();
    if (substr($S, $P, 1) eq '}') { $P++; return \%h }
    while (1) {
      jws(); my $k = jstring(); jws(); $P++; # ':'
      $h{$k} = jval(); jws();
      my $d = substr($S, $P++, 1);
      return \%h if $d eq '}';
      die "bad JSON\n" unless $d eq ',';
    }
  }
  if ($c eq '[') {
    $P++; my @a; jws();
    if (substr($S, $P, 1) eq ']') { $P++; return \@a }
    while (1) {
      push @a, jval(); jws();
      my $d = substr($S, $P++, 1);
      return \@a if $d eq ']';
      die "bad JSON\n" unless $d eq ',';
    }
  }
  return jstring() if $c eq '"';
  if (substr($S, $P, 5) =~ /^(true|false|null)/) { $P += length $1; return $1 eq 'true' ? 1 : $1 eq 'false' ? 0 : undef }
  if (substr($S, $P, 40) =~ /^(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/) { $P += length $1; return 0 + $1 }
  die "bad JSON\n";
}

# a text as JSON: bytes read as UTF-8 where they are, else one character each
sub jstr {
  my ($s) = @_;
  utf8::decode($s);
  $s =~ s/(["\\])/\\$1/g;
  $s =~ s/([\x00-\x1f\x7f-\x{ffff}])/sprintf('\\u%04x', ord $1)/ge;
  $s =~ s/([\x{10000}-\x{10ffff}])/my $c = ord($1) - 0x10000; sprintf('\\u%04x\\u%04x', 0xD800 + ($c >> 10), 0xDC00 + ($c & 0x3ff))/ge;
  return qq("$s");
}

sub report {
  my (%m) = @_;
  my @f = map {
    my $v = $m{$_};
    my $j = !defined $v ? 'null' : ($_ eq 'n' || $_ eq 'pid' || $_ eq 'code') ? 0 + $v : $v eq '1' && $_ eq 'folder' ? 'true' : jstr($v);
    jstr($_) . ':' . $j
  } sort keys %m;
  my $line = '{' . join(',', @f) . "}\n";
  local $SIG{PIPE} = 'IGNORE';
  while (length $line) {
    my $w = syswrite($ipc, $line);
    if (!defined $w) { next if $!{EINTR}; exit 0 }    # the node is gone
    substr($line, 0, $w, '');
  }
}

# ---- the task's folder (as src/executors/run-folder.ts) ----
# worded as Node.js words it: "ENOTDIR: not a directory, mkdir '/x'"
sub errtext { my ($what, $path) = @_; ($ERRNAME{0 + $!} // 'EIO') . ': ' . lc("$!") . ", $what '$path'" }
sub fail { die errtext(@_) . "\n" }

sub dirname_of { my ($p) = @_; $p =~ s{/[^/]*$}{}; $p eq '' ? '/' : $p }

sub prepare_folder {
  my ($f) = @_;
  my $dir = $f->{dir};
  if (lstat $dir) { remove_tree($dir, { safe => 0, error => \my $ignored }) }
  elsif (!$!{ENOENT}) { fail('unlink', $dir) }
  make_path($dir, { error => \my $err });
  fail('mkdir', $dir) unless -d $dir;
  my %folders;
  for my $i (@{$f->{inputs} // []}) {
    my $at = "$dir/$i->{name}";
    for (my $d = dirname_of($at); $d ne $dir && !$folders{$d} && length $d > length $dir; $d = dirname_of($d)) { $folders{$d} = 1 }
    if (dirname_of($at) ne $dir) { make_path(dirname_of($at), { error => \my $e2 }); fail('mkdir', dirname_of($at)) unless -d dirname_of($at) }
    next if link($i->{host}, $at);
    if ($f->{mountPoints}) { open(my $fh, '>', $at) or fail('open', $at); close $fh }
    else { symlink($i->{host}, $at) or fail('symlink', $at) }
  }
  for my $d ($dir, keys %folders) {
    chmod(0755, $d) or fail('chmod', $d);
    if ($f->{owner}) { chown($f->{owner}[0], $f->{owner}[1], $d) or fail('chown', $d) }
  }
}

sub clear_folder {
  my ($f) = @_;
  rename("$f->{dir}/$f->{keep}{from}", $f->{keep}{to}) if $f->{keep};
  remove_tree($f->{dir}, { safe => 0, error => \my $ignored });
}

# ---- jobs ----
my %jobs;      # pid => job
my %readers;   # fileno => [job, fh, buffered partial line]
my $sel = IO::Select->new($ipc);
pipe(my $wake_r, my $wake_w) or die;
$_->blocking(0) for $wake_r, $wake_w;
$sel->add($wake_r);
# (the handler runs between any two statements: it must leave $! as it found it)
$SIG{CHLD} = sub { local ($!, $?); syswrite($wake_w, 'x') };
$SIG{$_} = 'IGNORE' for qw(INT TERM HUP);

sub pattern {
  my ($p) = @_;
  return undef unless $p;
  my $fl = join '', grep { index('ims', $_) >= 0 } split //, $p->{flags} // '';
  my $re = eval { $fl ? qr/(?$fl)$p->{source}/ : qr/$p->{source}/ };
  return $re;
}

sub finish {
  my ($job) = @_;
  return if $job->{finished} || !$job->{reaped} || $job->{open_pipes};
  $job->{finished} = 1;
  delete $jobs{$job->{pid}};
  kill 'KILL', -$job->{pid};
  close $job->{log} if $job->{log};
  close $job->{out} if $job->{out};
  clear_folder($job->{folder}) if $job->{folder};
  my $st = $job->{status};
  my ($code, $signal) = WIFSIGNALED($st) ? (undef, 'SIG' . $SIGNAME[WTERMSIG($st)]) : (WEXITSTATUS($st), undef);
  report(t => 'exit', n => $job->{n}, code => $code, signal => $signal);
}

sub scan_line {
  my ($job, $line) = @_;
  my $text = $line;
  utf8::decode($text);
  $text =~ s/^\s+|\s+$//g;
  if ($job->{progress} && $line =~ $job->{progress}) {
    my $t = substr($text, 0, 200); utf8::encode($t);
    report(t => 'progress', n => $job->{n}, text => $t);
  }
  if ($job->{missing} && $line =~ $job->{missing}) {
    $job->{missing} = undef;
    my $t = substr($text, 0, 300); utf8::encode($t);
    report(t => 'missing', n => $job->{n}, text => $t);
  }
}

sub run {
  my ($m) = @_;
  my $n = $m->{n};
  if ($m->{folder}) {
    if (!eval { prepare_folder($m->{folder}); 1 }) {
      (my $e = $@) =~ s/\n$//;
      report(t => 'pid', n => $n);
      report(t => 'exit', n => $n, code => undef, signal => undef, error => $e, folder => 1);
      return;
    }
  }
  # Perl's own handles: closed on exec, so that a tool sees only its own three
  my ($log, $out);
  my $err = open($log, '>>', $m->{logFile}) ? undef : errtext('open', $m->{logFile});
  if (!$err && $m->{stdoutTo}) {
    if (!open($out, '>', $m->{stdoutTo})) { $err = errtext('open', $m->{stdoutTo}); close $log }
  }
  if ($err) {
    report(t => 'pid', n => $n);
    clear_folder($m->{folder}) if $m->{folder};
    report(t => 'exit', n => $n, code => undef, signal => undef, error => $err);
    return;
  }
  my $progress = pattern($m->{progress});
  my $missing = pattern($m->{missing});
  my $scan = defined $progress || defined $missing;
  $out = undef unless $m->{stdoutTo};
  my (@pipes, $o_r, $o_w, $e_r, $e_w);
  if ($scan) {
    if (!defined $out) { pipe($o_r, $o_w) or die; push @pipes, $o_r }
    pipe($e_r, $e_w) or die; push @pipes, $e_r;
  }
  pipe(my $x_r, my $x_w) or die;    # the child's exec error, if any (closed on exec)
  fcntl($x_w, F_SETFD, FD_CLOEXEC);
  my %env = $m->{envOnly} ? %{$m->{env} // {}} : (%ENV, %{$m->{env} // {}});
  my $pid = fork;
  if (!defined $pid) {
    my $e = 'spawn ' . $m->{exe} . ' ' . ($ERRNAME{0 + $!} // 'EAGAIN');
    close $log; close $out if $out;
    report(t => 'pid', n => $n);
    clear_folder($m->{folder}) if $m->{folder};
    report(t => 'exit', n => $n, code => undef, signal => undef, error => $e);
    return;
  }
  if ($pid == 0) {
    $SIG{$_} = 'DEFAULT' for qw(CHLD INT TERM HUP PIPE);
    close $x_r;
    setsid();
    my $null = POSIX::open('/dev/null', O_RDONLY);
    POSIX::dup2($null, 0);
    POSIX::dup2(fileno($scan && !$out ? $o_w : ($out // $log)), 1);
    POSIX::dup2(fileno($scan ? $e_w : $log), 2);
    POSIX::close($null) if $null > 2;
    %ENV = %env;
    if (chdir $m->{cwd}) { no warnings 'exec'; exec { $m->{exe} } $m->{exe}, @{$m->{args} // []} }
    syswrite($x_w, pack('N', 0 + $!));
    _exit(127);
  }
  close $x_w;
  close $o_w if $o_w;
  close $e_w if $e_w;
  my $errno = '';
  1 while !defined sysread($x_r, $errno, 4) && $!{EINTR};
  close $x_r;
  if (length $errno == 4) {
    waitpid($pid, 0);
    close $_ for @pipes;
    close $log; close $out if $out;
    report(t => 'pid', n => $n);
    clear_folder($m->{folder}) if $m->{folder};
    report(t => 'exit', n => $n, code => undef, signal => undef, error => 'spawn ' . $m->{exe} . ' ' . ($ERRNAME{unpack 'N', $errno} // 'EIO'));
    return;
  }
  if ($nice) { if (open(my $ag, '>', "/proc/$pid/autogroup")) { print $ag $nice; close $ag } }
  report(t => 'pid', n => $n, pid => $pid);
  my $job = { n => $n, pid => $pid, folder => $m->{folder}, progress => $progress, missing => $missing, open_pipes => scalar @pipes };
  # the child holds its own copies of the descriptors
  if ($scan) { $job->{out} = $out; $job->{log} = $log } else { close $log; close $out if $out }
  for my $fh (@pipes) { $fh->blocking(0); $readers{fileno $fh} = [$job, $fh, '']; $sel->add($fh) }
  $jobs{$pid} = $job;
}

sub read_pipe {
  my ($r) = @_;
  my ($job, $fh) = @$r;
  my $got = sysread($fh, my $buf, 65536);
  return if !defined $got && ($!{EAGAIN} || $!{EINTR});
  if (!$got) {
    scan_line($job, $r->[2]) if length $r->[2];
    $sel->remove($fh); delete $readers{fileno $fh}; close $fh;
    $job->{open_pipes}--;
    finish($job);
    return;
  }
  syswrite($job->{log}, $buf);
  $r->[2] .= $buf;
  # lines end at \n, \r\n or \r, as Node's readline has them
  while ($r->[2] =~ s/^([^\r\n]*)(\r\n|\n|\r(?=.))//s) { scan_line($job, $1) }
}

sub reap {
  while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
    my $job = $jobs{$pid} or next;
    $job->{reaped} = 1;
    $job->{status} = $?;
    finish($job);
  }
}

setpriority(0, 0, $nice) if $nice;
my $inbuf = '';
while (1) {
  my @ready = $sel->can_read;
  # the wake-up bytes are read before the children are reaped, never after: a child that ends
  # once they are read writes one more, which wakes the next turn (read after a run() of this
  # turn, the byte of a tool that ended at once would be lost, and its task never end)
  if (grep { $_ == $wake_r } @ready) { 1 while sysread($wake_r, my $x, 512) }
  reap();
  for my $fh (@ready) {
    next if $fh == $wake_r;
    if ($fh == $ipc) {
      my $got = sysread($ipc, my $buf, 65536);
      next if !defined $got && ($!{EAGAIN} || $!{EINTR});
      exit 0 unless $got;    # the node is gone
      $inbuf .= $buf;
      while ($inbuf =~ s/^([^\n]*)\n//) {
        my $m = eval { jparse($1) };
        run($m) if ref $m eq 'HASH' && ($m->{t} // '') eq 'run';
      }
      next;
    }
    my $r = $readers{fileno $fh};
    read_pipe($r) if $r;
  }
}

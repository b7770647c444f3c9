package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/lab/guest"
)

// statusFile is where init records how boot went, for the host to read
// through the control channel.
const statusFile = guest.InitStatusFile

// status is the content of statusFile.
type status struct {
	ModulesFailed []string `json:"modulesFailed"`
	ModulesLoaded []string `json:"modulesLoaded"`
	Errors        []string `json:"errors"`
	BootMillis    int64    `json:"bootMillis"`
}

// uptime returns the time since the kernel started.
func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// initMain is PID 1: set the machine up, then supervise the server and reap.
func initMain() {
	start := time.Now()
	os.Setenv("PATH", guestPATH)
	os.Setenv("HOME", "/root")
	st := status{ModulesFailed: []string{}, ModulesLoaded: []string{}, Errors: []string{}}
	fail := func(err error) {
		logf("%v", err)
		st.Errors = append(st.Errors, err.Error())
	}

	for _, err := range mountAll() {
		fail(err)
	}
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		consoleMu.Lock()
		console = f
		consoleMu.Unlock()
	}
	var u unix.Utsname
	_ = unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	logf("kernel %s, init started %d ms after boot", release, (uptime() - time.Since(start)).Milliseconds())

	loaded, failed := loadModules(release)
	st.ModulesLoaded = append(st.ModulesLoaded, loaded...)
	for _, f := range failed {
		st.ModulesFailed = append(st.ModulesFailed, f.name)
		st.Errors = append(st.Errors, fmt.Sprintf("module %s: %v", f.name, f.err))
	}

	for _, err := range setSysctls() {
		fail(err)
	}

	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fail(fmt.Errorf("read kernel command line: %w", err))
	}
	cfg, err := parseCmdline(string(cmdline))
	if err != nil {
		fail(err)
	}
	if err := setupNetwork(cfg); err != nil {
		fail(err)
	}
	if err := setupHostname(cfg); err != nil {
		fail(err)
	}

	boot := uptime()
	st.BootMillis = boot.Milliseconds()
	if err := writeStatus(st); err != nil {
		fail(err)
	}
	if len(st.Errors) > 0 {
		logf("%d problem(s) during boot, see %s", len(st.Errors), statusFile)
	}
	logf("init took %d ms", time.Since(start).Milliseconds())
	logf("ready in %d ms", boot.Milliseconds())

	supervise()
}

// writeStatus writes statusFile atomically.
func writeStatus(st status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	tmp := statusFile + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if err := os.Rename(tmp, statusFile); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// supervise runs the control-channel server as a child ("/init serve"),
// restarts it when it exits, reaps every other child (orphans are reparented
// to PID 1), and powers off on SIGTERM or SIGINT. It never returns.
func supervise() {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	self, err := os.Executable()
	if err != nil || self == "" {
		self = "/init"
	}
	serverPid := 0
	restart := time.NewTimer(0) // start the server right away
	tick := time.NewTicker(10 * time.Second)
	startServer := func() {
		p, err := os.StartProcess(self, []string{self, "serve"}, &os.ProcAttr{
			Env:   os.Environ(),
			Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		})
		if err != nil {
			logf("start control-channel server: %v; retrying in 1 s", err)
			restart.Reset(time.Second)
			return
		}
		serverPid = p.Pid
		// PID 1 reaps with wait4(-1); the os.Process is not waited through.
		_ = p.Release()
	}
	reap := func() {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if pid <= 0 || err != nil {
				return
			}
			if pid == serverPid {
				serverPid = 0
				logf("control-channel server exited (%s); restarting it in 1 s", describeWait(ws))
				restart.Reset(time.Second)
			}
		}
	}
	for {
		select {
		case <-restart.C:
			if serverPid == 0 {
				startServer()
			}
		case <-tick.C:
			reap()
		case sig := <-sigs:
			switch sig {
			case unix.SIGCHLD:
				reap()
			default:
				powerOff(sig)
			}
		}
	}
}

func describeWait(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}

// powerOff stops every process, syncs and powers the machine off.
func powerOff(sig os.Signal) {
	logf("%v: powering off", sig)
	_ = unix.Kill(-1, unix.SIGTERM)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.ECHILD) {
			break
		}
		if pid <= 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		logf("power off: %v", err)
	}
	// Reboot does not return on success; PID 1 must not exit.
	for {
		time.Sleep(time.Hour)
	}
}

// mount is one file system init mounts.
type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	optional               bool
}

var mounts = []mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", false},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666", false},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", true},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", false},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", false},
	{"bpf", "/sys/fs/bpf", "bpf", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=0700", false},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"debugfs", "/sys/kernel/debug", "debugfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", true},
	{"tracefs", "/sys/kernel/tracing", "tracefs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", true},
}

// mountAll mounts the kernel file systems and makes /run/netns. It returns
// the failures of the required ones.
func mountAll() []error {
	var errs []error
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil && !m.optional {
			errs = append(errs, fmt.Errorf("mount %s: %w", m.target, err))
			continue
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && err != unix.EBUSY && !m.optional {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err))
		}
	}
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		errs = append(errs, fmt.Errorf("make /run/netns: %w", err))
	}
	return errs
}

// sysctl is one kernel setting init makes.
type sysctl struct {
	key, value string
	optional   bool
}

var sysctls = []sysctl{
	{"net.ipv4.ip_forward", "1", false},
	{"net.ipv6.conf.all.forwarding", "1", true},
	{"net.ipv4.conf.all.rp_filter", "0", false},
	{"net.ipv4.conf.default.rp_filter", "0", false},
	{"kernel.unprivileged_bpf_disabled", "1", true},
}

// setSysctls sets the lab's sysctls and returns the failures of the
// required ones.
func setSysctls() []error {
	var errs []error
	for _, s := range sysctls {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(s.key, ".", "/"))
		err := os.WriteFile(p, []byte(s.value+"\n"), 0o644)
		switch {
		case err == nil:
		case s.optional:
			logf("sysctl %s=%s (optional): %v", s.key, s.value, err)
		default:
			errs = append(errs, fmt.Errorf("sysctl %s=%s: %w", s.key, s.value, err))
		}
	}
	return errs
}

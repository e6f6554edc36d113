package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// server is the process under test: one this program started (-server-bin: its exit code is
// known), one given by -pid, or none (pid 0: no RSS, no SIGTERM).
type server struct {
	pid      int
	cmd      *exec.Cmd
	exited   chan struct{}
	exitCode int
	exitAt   time.Time

	maxRSS, hwm atomic.Int64 // KiB
	stopSample  context.CancelFunc
}

func startOrAttach(ctx context.Context, c config) (*server, error) {
	s := &server{pid: c.pid, exited: make(chan struct{})}
	if c.serverBin != "" {
		logf, err := os.Create(c.serverLog)
		if err != nil {
			return nil, err
		}
		s.cmd = exec.Command(c.serverBin)
		s.cmd.Env = os.Environ()
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		// should this program die, the server gets a SIGTERM instead of living on
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := s.cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", c.serverBin, err)
		}
		s.pid = s.cmd.Process.Pid
		go func() {
			err := s.cmd.Wait()
			s.exitAt = time.Now()
			s.exitCode = s.cmd.ProcessState.ExitCode()
			if err != nil && s.exitCode == 0 {
				s.exitCode = -1
			}
			logf.Close()
			close(s.exited)
		}()
		if err := s.waitReady(ctx, c.url); err != nil {
			s.stop()
			return nil, fmt.Errorf("%w (server log: %s)", err, c.serverLog)
		}
		fmt.Printf("started %s pid=%d (log %s)\n", c.serverBin, s.pid, c.serverLog)
	}
	if s.pid > 0 {
		if c.resetHWM {
			// "5" resets the peak RSS (VmHWM) so that it covers this run only.
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid), []byte("5"), 0); err != nil {
				fmt.Fprintf(os.Stderr, "load: cannot reset VmHWM (%v): the peak may predate the run\n", err)
			}
		}
		sctx, cancel := context.WithCancel(ctx)
		s.stopSample = cancel
		go s.sample(sctx)
	}
	return s, nil
}

func (s *server) waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, path := range []string{"/healthz", "/readyz"} {
		for {
			resp, err := http.Get(url + path)
			if err == nil {
				resp.Body.Close()
				// /readyz: 200, or 404 from a server without it (a bench floor)
				if resp.StatusCode == http.StatusOK || (path == "/readyz" && resp.StatusCode == http.StatusNotFound) {
					break
				}
			}
			select {
			case <-s.exited:
				return fmt.Errorf("server exited with code %d before %s answered 200", s.exitCode, path)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s%s did not answer 200 within 30 s", url, path)
			}
		}
	}
	return nil
}

func (s *server) sample(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		rss, hwm := readVm(s.pid)
		if rss > s.maxRSS.Load() {
			s.maxRSS.Store(rss)
		}
		if hwm > 0 {
			s.hwm.Store(hwm)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// peak returns the peak RSS in KiB: VmHWM (kernel's peak since the reset) and the highest VmRSS
// sampled every 100 ms.
func (s *server) peak() (hwm, sampled int64) {
	if s.pid > 0 {
		if rss, h := readVm(s.pid); h > 0 {
			s.hwm.Store(h)
			if rss > s.maxRSS.Load() {
				s.maxRSS.Store(rss)
			}
		}
	}
	return s.hwm.Load(), s.maxRSS.Load()
}

func readVm(pid int) (rss, hwm int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

func (s *server) signal(sig syscall.Signal) error {
	if s.cmd != nil {
		return s.cmd.Process.Signal(sig)
	}
	return syscall.Kill(s.pid, sig)
}

// waitExit waits up to timeout for the server to end. code is -2 when unknown (not our child).
func (s *server) waitExit(since time.Time, timeout time.Duration) (exited bool, code int, after time.Duration) {
	if s.cmd != nil {
		select {
		case <-s.exited:
			return true, s.exitCode, s.exitAt.Sub(since)
		case <-time.After(timeout):
			return false, 0, time.Since(since)
		}
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(s.pid, 0); err == syscall.ESRCH {
			return true, -2, time.Since(since)
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid)); err == nil && strings.Contains(string(st), ") Z ") {
			return true, -2, time.Since(since) // a zombie: exited, its parent has not reaped it yet
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false, 0, time.Since(since)
}

func (s *server) running() bool {
	if s.cmd != nil {
		select {
		case <-s.exited:
			return false
		default:
			return true
		}
	}
	return s.pid > 0 && syscall.Kill(s.pid, 0) == nil
}

// stop ends a server this program started (SIGTERM, then SIGKILL after 20 s); never another one.
func (s *server) stop() {
	if s.stopSample != nil {
		s.stopSample()
	}
	if s.cmd == nil || !s.running() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if ok, _, _ := s.waitExit(time.Now(), 20*time.Second); !ok {
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

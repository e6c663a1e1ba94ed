// Package upstate records the meshes that `meshbench up` keeps running, so
// that `meshbench down` can find, stop and report them: one JSON file per
// running up, named by its pid, in a directory only its user may enter.
package upstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// State is what a running up started.
type State struct {
	PID int `json:"pid"`
	// ProcStart is the process's start time as the kernel counts it
	// (/proc/PID/stat field 22), where there is a /proc: a pid reused by
	// another process after the up died is not mistaken for it.
	ProcStart string    `json:"procStart,omitempty"`
	Started   time.Time `json:"started"`
	Scenario  string    `json:"scenario"`
	Runtime   string    `json:"runtime"`
	Gateway   string    `json:"gateway"`
	// Proxies maps each proxy (pod or gateway) to its metrics URL.
	Proxies map[string]string `json:"proxies"`
	// Files are what the up wrote for the user (prometheus.yml, the dashboard).
	Files []string `json:"files,omitempty"`

	// Path is the state file's path (not stored).
	Path string `json:"-"`
}

// Dir is where state files live: $XDG_RUNTIME_DIR/meshbench (per user,
// cleared at logout, as the XDG Base Directory spec means it for such
// files), else os.TempDir()/meshbench-UID.
func Dir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "meshbench")
	}
	return filepath.Join(os.TempDir(), "meshbench-"+strconv.Itoa(os.Getuid()))
}

// ensureDir makes dir, mode 0700, and refuses one that another user owns
// or others may write: in a shared /tmp, someone could have made it first.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || (ok && int(st.Uid) != os.Getuid()) || fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("state directory %s: not a directory of this user's alone (mode 0700)", dir)
	}
	return nil
}

// Write records s for this process in dir and returns the file's path.
func Write(dir string, s State) (string, error) {
	if err := ensureDir(dir); err != nil {
		return "", err
	}
	s.PID = os.Getpid()
	s.ProcStart = procStart(s.PID)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, fmt.Sprintf("up-%d.json", s.PID))
	// Written whole under another name first, so down never reads half a file.
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// List reads every state file in dir, in pid order. A directory that does
// not exist holds none.
func List(dir string) ([]State, error) {
	names, err := filepath.Glob(filepath.Join(dir, "up-*.json"))
	if err != nil {
		return nil, err
	}
	var out []State
	var errs []error
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var s State
		if err := json.Unmarshal(b, &s); err != nil || s.PID <= 0 {
			errs = append(errs, fmt.Errorf("%s: not a state file of meshbench up (%v)", n, err))
			continue
		}
		s.Path = n
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b State) int { return a.PID - b.PID })
	return out, errors.Join(errs...)
}

// Alive reports whether the process that wrote s still runs.
func (s State) Alive() bool {
	if err := syscall.Kill(s.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if s.ProcStart == "" {
		return true
	}
	now := procStart(s.PID)
	return now == "" || now == s.ProcStart
}

// Remove deletes s's state file; one already gone is no error.
func (s State) Remove() error {
	if err := os.Remove(s.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// procStart is field 22 of /proc/PID/stat (starttime), or "" where it
// cannot be read. The command name (field 2) is in parentheses and may
// hold spaces: the fields are counted after its closing one.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:]) // field 3 onwards
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

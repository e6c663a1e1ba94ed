// Command runc-capfilter is an OCI runtime wrapper for Docker engines that
// run where the capability bounding set lacks capabilities Docker asks for
// (some VMs drop CAP_SYS_RESOURCE): `docker run --privileged` then fails
// with "unable to apply caps: operation not permitted". It removes from the
// OCI bundle's config.json (create, run) and from exec's --process file the
// capabilities this process's bounding set does not hold, then execs runc
// with the same arguments. Everything else passes through unchanged.
//
// scripts/docker-engine.sh builds it and registers it as dockerd's default
// runtime only where the bounding set lacks a capability.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	runc := os.Getenv("RUNC_CAPFILTER_RUNC")
	if runc == "" {
		runc = "/usr/bin/runc"
	}
	bounding, err := boundingSet("/proc/self/status")
	if err == nil {
		if err := filterArgs(os.Args[1:], bounding); err != nil {
			fmt.Fprintln(os.Stderr, "runc-capfilter:", err)
			os.Exit(1)
		}
	} else {
		fmt.Fprintln(os.Stderr, "runc-capfilter: bounding set unknown, passing through:", err)
	}
	args := append([]string{runc}, os.Args[1:]...)
	if err := syscall.Exec(runc, args, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "runc-capfilter: exec", runc+":", err)
		os.Exit(1)
	}
}

// filterArgs finds the files runc is about to read capabilities from and
// rewrites them: the bundle's config.json for create and run, the --process
// file for exec.
func filterArgs(args []string, bounding uint64) error {
	cmd, bundle, process := "", ".", ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() string {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				return v
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "--bundle" || a == "-b" || strings.HasPrefix(a, "--bundle="):
			bundle = val()
		case a == "--process" || a == "-p" || strings.HasPrefix(a, "--process="):
			process = val()
		case a == "--root" || a == "--log" || a == "--log-format" || a == "--criu" || a == "--pid-file" || a == "--console-socket":
			i++ // global and per-command options with a value
		case !strings.HasPrefix(a, "-") && cmd == "":
			cmd = a
		}
	}
	switch cmd {
	case "create", "run":
		return rewrite(bundle+"/config.json", bounding, func(doc map[string]any) map[string]any {
			p, _ := doc["process"].(map[string]any)
			return p
		})
	case "exec":
		if process == "" {
			return nil
		}
		return rewrite(process, bounding, func(doc map[string]any) map[string]any { return doc })
	}
	return nil
}

// rewrite drops unheld capabilities from the capabilities object that proc
// finds in the JSON file at path, keeping every other field as it was.
func rewrite(path string, bounding uint64, proc func(map[string]any) map[string]any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	p := proc(doc)
	if p == nil {
		return nil
	}
	caps, _ := p["capabilities"].(map[string]any)
	if caps == nil {
		return nil
	}
	changed := false
	for set, v := range caps {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := list[:0]
		for _, c := range list {
			name, _ := c.(string)
			if n, known := capNumbers[name]; known && bounding&(1<<n) == 0 {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	if !changed {
		return nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// boundingSet reads CapBnd from a /proc status file.
func boundingSet(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("%s: no CapBnd line", path)
}

// capNumbers are the capability numbers of linux/capability.h.
var capNumbers = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
	"CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
	"CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
	"CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
	"CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
	"CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32,
	"CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36,
	"CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}

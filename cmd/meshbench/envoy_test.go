package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnvoyFlags: the command line pilot-agent passes (istio.io/istio
// pkg/envoy/proxy.go) parses, and what Envoy refuses is refused with exit status 1.
func TestEnvoyFlags(t *testing.T) {
	o, err := parseEnvoyFlags([]string{"-c", "etc/istio/proxy/envoy-rev.json", "--drain-time-s", "45", "--drain-strategy", "immediate",
		"--local-address-ip-version", "v4", "--file-flush-interval-msec", "1000", "--disable-hot-restart", "--allow-unknown-static-fields",
		"--file-flush-min-size-kb", "64", "-l", "warning", "--component-log-level", "misc:error", "--skip-deprecated-logs",
		"--config-yaml", `{"node":{"id":"x"}}`, "--concurrency=2"})
	if err != nil {
		t.Fatal(err)
	}
	if o.configPath != "etc/istio/proxy/envoy-rev.json" || o.drainTime != 45*time.Second || !o.allowUnknown || o.logLevel != "warning" || o.configYAML == "" {
		t.Fatalf("parsed %+v", o)
	}
	for _, bad := range [][]string{{"--bogus"}, {"-l", "loud"}, {"--drain-time-s"}, {"--concurrency", "x"}, {"--component-log-level", "misc"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"envoy"}, bad...), &stdout, &stderr)
		if code := exitCode(err, &stderr); code != 1 || !strings.Contains(stderr.String(), bad[0]) && !strings.Contains(stderr.String(), "PARSE ERROR") {
			t.Errorf("%v: exit %d, stderr %q", bad, code, stderr.String())
		}
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"envoy", "--version"}, &stdout, &stdout); err != nil || !strings.Contains(stdout.String(), "envoy  version: ") {
		t.Fatalf("--version: %v %q", err, stdout.String())
	}
}

// TestEnvoyRefusesUnknownBootstrapField: without --allow-unknown-static-fields
// an unknown field fails startup with exit status 1, as in Envoy.
func TestEnvoyRefusesUnknownBootstrapField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envoy-rev.json")
	if err := os.WriteFile(path, []byte(`{"node":{"id":"x"},"not_a_field":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"envoy", "-c", path}, &stdout, &stderr)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "not_a_field") {
		t.Fatalf("got %v", err)
	}
}

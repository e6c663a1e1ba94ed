// Package requiretest decides what a test does when something it needs
// from the machine is missing (a Prometheus binary, Chromium, a Docker
// engine, the kind runtime): on a developer's fresh machine it skips,
// saying why, so that `make test` passes there; where the environment
// variable MESHBENCH_REQUIRE names it (CI sets
// MESHBENCH_REQUIRE=prometheus,chromium), it fails instead, so that a
// failed install cannot turn a test into a silent skip.
package requiretest

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// Env is the environment variable that names, comma-separated, what the
// tests must find: any of Names.
const Env = "MESHBENCH_REQUIRE"

// What a test may need; MESHBENCH_REQUIRE names some of them.
const (
	Prometheus = "prometheus"
	Chromium   = "chromium"
	Docker     = "docker"
	Kind       = "kind"
)

// Names are the names MESHBENCH_REQUIRE may hold.
var Names = []string{Prometheus, Chromium, Docker, Kind}

// Required reports whether MESHBENCH_REQUIRE names what. A name it does
// not know is an error, so that a misspelt name does not quietly require
// nothing.
func Required(what string) (bool, error) {
	required := false
	for _, n := range strings.Split(os.Getenv(Env), ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if !slices.Contains(Names, n) {
			return false, fmt.Errorf("%s=%q: unknown name %q (known: %s)", Env, os.Getenv(Env), n, strings.Join(Names, ", "))
		}
		if n == what {
			required = true
		}
	}
	return required, nil
}

// Missing ends t because what is missing, for the reason why: t fails when
// MESHBENCH_REQUIRE names what (or holds a name it does not know), and
// skips otherwise.
func Missing(t testing.TB, what, why string) {
	t.Helper()
	required, err := Required(what)
	switch {
	case err != nil:
		t.Fatalf("%s: %v", why, err)
	case required:
		t.Fatalf("%s, and %s=%s requires it", why, Env, os.Getenv(Env))
	default:
		t.Skipf("%s (%s=%s would make this a failure)", why, Env, what)
	}
}

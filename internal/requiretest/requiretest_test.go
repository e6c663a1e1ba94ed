package requiretest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequired(t *testing.T) {
	for _, c := range []struct {
		env, what string
		want      bool
		err       bool
	}{
		{"", Prometheus, false, false},
		{"prometheus,chromium", Prometheus, true, false},
		{"prometheus,chromium", Chromium, true, false},
		{" Prometheus , chromium ", Chromium, true, false},
		{"prometheus,chromium", Docker, false, false},
		{"prometheus,,", Kind, false, false},
		{"prometheus,chromuim", Prometheus, false, true},
	} {
		t.Setenv(Env, c.env)
		got, err := Required(c.what)
		if c.err {
			assert.Error(t, err, "%q", c.env)
			continue
		}
		require.NoError(t, err, "%q", c.env)
		assert.Equal(t, c.want, got, "%q %s", c.env, c.what)
	}
}

// recorder is a testing.TB that records how Missing ended it.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skipf(string, ...any)  { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestMissingSkipsUnlessRequired(t *testing.T) {
	for _, c := range []struct {
		env          string
		skip, failed bool
	}{
		{"", true, false},
		{"chromium", true, false},
		{"prometheus", false, true},
		{"chromium,prometheus", false, true},
		{"prometheus,nope", false, true},
	} {
		t.Setenv(Env, c.env)
		r := &recorder{TB: t}
		Missing(r, Prometheus, "no prometheus binary on PATH")
		assert.Equal(t, c.skip, r.skipped, "%q skips", c.env)
		assert.Equal(t, c.failed, r.failed, "%q fails", c.env)
	}
}

package docker_test

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/docker"
)

// `meshbench check -runtime docker` judges a folder's promises in
// containers as the local runtime does: the mTLS migration folder's STRICT,
// PERMISSIVE and DISABLE policies each hold, with the plaintext caller a
// container without a sidecar; the process exits 0, and none of its
// containers and networks remain.
func TestCheckOnDockerHoldsTheMTLSMigrationFolder(t *testing.T) {
	needEngine(t)
	cli := engine(t)
	folder := filepath.Join("..", "..", "derive", "testdata", "mtls-migration")
	cmd := exec.Command(binary, "check", "-runtime", "docker", "-shift", "0.25", "-rate", "100", "-dir", t.TempDir(), folder)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	text := string(out)
	assert.NotContains(t, text, "✗")
	for _, promise := range []string{"STRICT: plaintext from outside the mesh is refused", "PERMISSIVE: plaintext and mTLS are both accepted", "DISABLE: plaintext is accepted"} {
		assert.Contains(t, text, promise)
	}
	assert.Contains(t, text, "✓ status 502 share (plaintext)", "STRICT refused the container without a sidecar")
	assert.Regexp(t, `\d+ of \d+ promises held`, text)
	assert.NotRegexp(t, `(?m)^0 of`, text)

	c, n := resources(t, cli, docker.LabelPID+"="+strconv.Itoa(cmd.Process.Pid))
	assert.Zero(t, c, "containers left")
	assert.Zero(t, n, "networks left")
	if t.Failed() {
		t.Log(strings.TrimSpace(text))
	}
}

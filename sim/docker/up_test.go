package docker_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/docker"
)

// `meshbench up -runtime docker canary-90-10` serves the printed gateway
// (payment answers through order), and `meshbench down` stops it: up exits
// 0, its state file is gone, and none of its containers and networks
// remain on the engine.
func TestUpOnDockerServesUntilDownLeavesNothing(t *testing.T) {
	needEngine(t)
	cli := engine(t)
	state := t.TempDir()
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+state)
	cmd := exec.Command(binary, "up", "-runtime", "docker", "-out", t.TempDir(), "canary-90-10")
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // a no-op once up has exited

	// What up prints until it says it is running; then the rest is drained
	// so that up's writes never block.
	lines := make(chan string, 256)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	var printed []string
	timeout := time.After(3 * time.Minute)
running:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				err := <-exited
				t.Fatalf("up ended before it was running (%v):\n%s\n%s", err, strings.Join(printed, "\n"), stderr.String())
			}
			printed = append(printed, l)
			if strings.HasPrefix(l, "running (pid ") {
				break running
			}
		case <-timeout:
			t.Fatalf("up not running within 3 minutes:\n%s", strings.Join(printed, "\n"))
		}
	}
	go func() { // the rest of stdout
		for range lines {
		}
	}()
	out := strings.Join(printed, "\n")
	t.Logf("up printed:\n%s", out)

	label := docker.LabelPID + "=" + strconv.Itoa(cmd.Process.Pid)
	c, n := resources(t, cli, label)
	require.Positive(t, c, "up's containers")
	require.Equal(t, 1, n, "up's network")
	files, err := filepath.Glob(filepath.Join(state, "meshbench", "up-*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1, "up recorded itself")

	// The gateway answers the curl up suggests.
	m := regexp.MustCompile(`curl -H 'Host: ([^']+)' (http://\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "no curl line")
	req, err := http.NewRequest(http.MethodGet, m[2], nil)
	require.NoError(t, err)
	req.Host = m[1]
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"service":"payment"`, "the request went through order to payment")

	down := exec.Command(binary, "down", "-up")
	down.Env = env
	downOut, err := down.CombinedOutput()
	require.NoError(t, err, "%s", downOut)
	assert.Regexp(t, `stopped up canary-90-10 \(pid \d+, docker runtime\)`, string(downOut))
	select {
	case err := <-exited:
		assert.NoError(t, err, "up exits 0 when stopped:\n%s", stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatal("up still running 2 minutes after down returned")
	}
	assert.NoFileExists(t, files[0])
	c, n = resources(t, cli, label)
	assert.Zero(t, c, "containers left")
	assert.Zero(t, n, "networks left")
}

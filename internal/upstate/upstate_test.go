package upstate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDirHonoursXDGRuntimeDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	assert.Equal(t, "/run/user/1000/meshbench", Dir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	assert.Equal(t, filepath.Join(os.TempDir(), "meshbench-"+strconv.Itoa(os.Getuid())), Dir())
}

func TestWriteListAndAlive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meshbench")
	p, err := Write(dir, State{Scenario: "canary-90-10", Runtime: "local", Proxies: map[string]string{"order-v1-0": "http://127.0.0.2:15090/stats/prometheus"}})
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	ups, err := List(dir)
	require.NoError(t, err)
	require.Len(t, ups, 1)
	assert.Equal(t, os.Getpid(), ups[0].PID)
	assert.Equal(t, p, ups[0].Path)
	assert.True(t, ups[0].Alive(), "this process runs")
	if ups[0].ProcStart != "" {
		// The same pid with another start time is another process.
		other := ups[0]
		other.ProcStart = "1"
		assert.False(t, other.Alive())
	}
	require.NoError(t, ups[0].Remove())
	require.NoError(t, ups[0].Remove(), "removing twice is no error")
	ups, err = List(dir)
	require.NoError(t, err)
	assert.Empty(t, ups)
}

func TestWriteRefusesADirectoryOthersMayWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meshbench")
	require.NoError(t, os.Mkdir(dir, 0o777))
	require.NoError(t, os.Chmod(dir, 0o777))
	_, err := Write(dir, State{})
	assert.ErrorContains(t, err, "0700")
}

// Stop signals a live process and returns once it has ended.
func TestStopEndsTheProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	p := filepath.Join(t.TempDir(), "up-x.json")
	require.NoError(t, os.WriteFile(p, []byte("{}"), 0o600))
	s := State{PID: cmd.Process.Pid, ProcStart: procStart(cmd.Process.Pid), Path: p}
	require.True(t, s.Alive())
	require.NoError(t, s.Stop(context.Background()))
	err := <-waited
	assert.ErrorContains(t, err, "terminated", "ended by SIGTERM")
	assert.NoFileExists(t, p)
}

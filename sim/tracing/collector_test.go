package tracing

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCollectorServesAndWritesBothFormats(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := ServeCollector(lis, 0)
	span := Span{TraceID: "463ac35c9f6413ad48485a3953bb6124", ID: "a2fb4a1d1a96d312", Name: "payment.default.svc.cluster.local:80/*",
		Kind: Server, Timestamp: 1_700_000_000_000_000, Duration: 1500, LocalEndpoint: &Endpoint{ServiceName: "payment.default"}}
	var body bytes.Buffer
	require.NoError(t, WriteZipkin(&body, []Span{span}))
	resp, err := http.Post("http://"+c.Addr().String()+ZipkinPath, "application/json", &body)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Wait(ctx, func(s []Span) bool { return len(s) == 1 }))
	require.NoError(t, c.Close())
	_, err = net.DialTimeout("tcp", c.Addr().String(), time.Second)
	assert.Error(t, err, "closed: nothing listens")

	dir := t.TempDir()
	require.NoError(t, WriteFiles(dir, c.Spans()))
	f, err := os.Open(filepath.Join(dir, ZipkinFile))
	require.NoError(t, err)
	defer f.Close()
	got, err := ReadZipkin(f)
	require.NoError(t, err)
	assert.Equal(t, []Span{span}, got)
	o, err := os.Open(filepath.Join(dir, OTLPFile))
	require.NoError(t, err)
	defer o.Close()
	td, err := ReadOTLP(o)
	require.NoError(t, err)
	assert.Len(t, td.GetResourceSpans(), 1)
}

func TestWriteFilesWritesNothingWithoutSpans(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, WriteFiles(dir, nil))
	_, err := os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "no folder, no files")
}

package docker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"

	"github.com/meshbench/meshbench/internal/requiretest"
)

// Another build's images stay while they are younger than the threshold
// (a suite of another checkout may still start meshes from them) and go
// once older; the kept tag always stays. A repository of the test's own
// keeps the user's images out of it.
func TestPruneOldSparesRecentImages(t *testing.T) {
	ctx := context.Background()
	if err := Available(ctx); err != nil {
		requiretest.Missing(t, requiretest.Docker, fmt.Sprintf("no Docker engine: %v", err))
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	require.NoError(t, err)
	defer cli.Close()

	bin := filepath.Join(t.TempDir(), "meshbench")
	require.NoError(t, os.WriteFile(bin, []byte("never run"), 0o755))
	const repo = "meshbench/prune-test"
	refs := map[string]string{"keep": repo + ":keep", "other": repo + ":other"}
	for tag, ref := range refs {
		// A label per tag: two images, not two tags of one.
		df := fmt.Sprintf("FROM scratch\nCOPY meshbench /meshbench\nLABEL %s=%s\n", LabelImage, tag)
		require.NoError(t, BuildImage(ctx, bin, df, ref))
		t.Cleanup(func() { _, _ = cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}) })
	}
	exists := func(ref string) bool {
		_, err := cli.ImageInspect(ctx, ref)
		return err == nil
	}

	pruneOld(ctx, cli, []string{repo}, "keep", time.Now().Add(-pruneAge))
	assert.True(t, exists(refs["other"]), "an image built a moment ago stays")
	assert.True(t, exists(refs["keep"]))

	pruneOld(ctx, cli, []string{repo}, "keep", time.Now().Add(time.Minute))
	assert.False(t, exists(refs["other"]), "an image older than the threshold goes")
	assert.True(t, exists(refs["keep"]), "the kept tag stays")
}

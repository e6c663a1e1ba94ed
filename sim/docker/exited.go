package docker

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// exited describes the run's containers that have stopped, each with its
// status and the last lines it wrote: a proxy that exits at start leaves
// the mesh unconverged, and the ACKs that never come do not say why.
func (m *Mesh) exited(ctx context.Context) string {
	f := client.Filters{}.Add("label", LabelRun+"="+m.run).Add("status", "exited")
	cs, err := m.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil || len(cs.Items) == 0 {
		return ""
	}
	var b strings.Builder
	for _, c := range cs.Items {
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		fmt.Fprintf(&b, "; %s: %s", name, c.Status)
		logs, err := m.cli.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "2"})
		if err != nil {
			continue
		}
		var out bytes.Buffer
		_, _ = stdcopy.StdCopy(&out, &out, logs)
		logs.Close()
		if s := strings.Join(strings.Fields(out.String()), " "); s != "" {
			fmt.Fprintf(&b, ": %s", s)
		}
	}
	return b.String()
}

package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// RemoveRun removes every container and network labelled with run.
func RemoveRun(ctx context.Context, cli *testcontainers.DockerClient, run string) error {
	return remove(ctx, cli, client.Filters{}.Add("label", LabelRun+"="+run))
}

// remove force-removes the containers, then the networks, that match f.
func remove(ctx context.Context, cli *testcontainers.DockerClient, f client.Filters) error {
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if cerrdefs.IsConflict(err) {
			// Another teardown (the orderly one, when a second Ctrl-C
			// hurries it) is removing it: wait until it is gone, so the
			// network can go too.
			err = waitRemoved(ctx, cli, c.ID)
		}
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range ns.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

func waitRemoved(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
	w := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	select {
	case <-w.Result:
		return nil
	case err := <-w.Error:
		return err
	}
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// Leftover is a run whose resources are still on the engine.
type Leftover struct {
	Run, Host  string
	PID        int
	Alive      bool // its meshbench process still runs (on this host)
	Containers int
	Networks   int
}

// Leftovers lists the runs that have containers or networks on the engine.
func Leftovers(ctx context.Context, cli *testcontainers.DockerClient) ([]Leftover, error) {
	f := client.Filters{}.Add("label", LabelRun)
	runs := map[string]*Leftover{}
	get := func(labels map[string]string) *Leftover {
		run := labels[LabelRun]
		l := runs[run]
		if l == nil {
			pid, _ := strconv.Atoi(labels[LabelPID])
			l = &Leftover{Run: run, Host: labels[LabelHost], PID: pid}
			l.Alive = alive(l.Host, l.PID)
			runs[run] = l
		}
		return l
	}
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	for _, c := range cs.Items {
		get(c.Labels).Containers++
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	for _, n := range ns.Items {
		get(n.Labels).Networks++
	}
	out := make([]Leftover, 0, len(runs))
	for _, l := range runs {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Run < out[j].Run })
	return out, nil
}

// alive reports whether the meshbench process of a run still runs. A run of
// another host counts as alive: this host cannot tell.
func alive(host string, pid int) bool {
	me, _ := os.Hostname()
	if host != me {
		return true
	}
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ReapDead removes what runs whose meshbench process is gone left behind
// (a meshbench killed with SIGKILL cannot clean up after itself).
func ReapDead(ctx context.Context, cli *testcontainers.DockerClient, log *slog.Logger) error {
	ls, err := Leftovers(ctx, cli)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range ls {
		if l.Alive {
			continue
		}
		log.Warn("removing what a dead run left behind", "run", l.Run, "pid", l.PID, "containers", l.Containers, "networks", l.Networks)
		errs = append(errs, RemoveRun(ctx, cli, l.Run))
	}
	return errors.Join(errs...)
}

// Down removes the resources of dead runs, or with all of every run, and
// returns what it removed. `meshbench down` calls it.
func Down(ctx context.Context, all bool, log *slog.Logger) ([]Leftover, error) {
	cli, err := newClient(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ls, err := Leftovers(ctx, cli)
	if err != nil {
		return nil, err
	}
	var out []Leftover
	var errs []error
	for _, l := range ls {
		if l.Alive && !all {
			log.Info("leaving a live run", "run", l.Run, "pid", l.PID)
			continue
		}
		errs = append(errs, RemoveRun(ctx, cli, l.Run))
		out = append(out, l)
	}
	return out, errors.Join(errs...)
}

// RemoveOwn removes every run of this process at once: the path of a second
// Ctrl-C, which does not wait for the runs' own orderly teardown.
func RemoveOwn(ctx context.Context) error {
	cli, err := newClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	host, _ := os.Hostname()
	f := client.Filters{}.Add("label", LabelPID+"="+strconv.Itoa(os.Getpid()), LabelHost+"="+host)
	return remove(ctx, cli, f)
}

package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Images are the two images a mesh's pods run, both FROM scratch with the
// same static meshbench binary: the builtin sidecar and the sample app.
type Images struct {
	Sidecar, App string
	// Built lists the images this call had to build (empty when both were there).
	Built []string
	// Size is the size of each image in bytes.
	Size map[string]int64
}

// Repositories of the images; the tag is the binary's content hash, so an
// unchanged build reuses them and a changed one never runs stale code.
const (
	SidecarRepo = "meshbench/sidecar"
	AppRepo     = "meshbench/fakesvc"
)

// EnsureImages makes sure the images of binary exist, building what is missing.
func EnsureImages(ctx context.Context, cli *testcontainers.DockerClient, binary string) (Images, error) {
	if err := checkStatic(binary); err != nil {
		return Images{}, err
	}
	sum, err := FileHash(binary)
	if err != nil {
		return Images{}, err
	}
	tag := sum[:16]
	out := Images{Sidecar: SidecarRepo + ":" + tag, App: AppRepo + ":" + tag, Size: map[string]int64{}}
	for _, img := range []struct{ repo, role, entry string }{
		{SidecarRepo, "sidecar", "proxy"},
		{AppRepo, "app", "fakesvc"},
	} {
		name := img.repo + ":" + tag
		if ins, err := cli.ImageInspect(ctx, name); err == nil {
			out.Size[name] = ins.Size
			continue
		}
		dockerfile := fmt.Sprintf("FROM scratch\nCOPY meshbench /meshbench\nLABEL %s=%s\nENTRYPOINT [\"/meshbench\", %q]\n", LabelImage, img.role, img.entry)
		if err := BuildImage(ctx, binary, dockerfile, name); err != nil {
			return out, err
		}
		out.Built = append(out.Built, name)
		if ins, err := cli.ImageInspect(ctx, name); err == nil {
			out.Size[name] = ins.Size
		}
	}
	if len(out.Built) > 0 {
		pruneOld(ctx, cli, []string{SidecarRepo, AppRepo}, tag, time.Now().Add(-pruneAge))
	}
	return out, nil
}

// BuildImage builds image (repo:tag) from dockerfile with binary as
// "meshbench" in its context, offline (testcontainers-go's BuildImage).
func BuildImage(ctx context.Context, binary, dockerfile, image string) error {
	repo, tag, _ := strings.Cut(image, ":")
	archive, err := buildContext(binary, dockerfile)
	if err != nil {
		return err
	}
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(quiet{}))
	if err != nil {
		return err
	}
	defer p.Close()
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	_, err = p.BuildImage(bctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		ContextArchive: archive, Repo: repo, Tag: tag, KeepImage: true,
	}})
	if err != nil {
		return fmt.Errorf("build image %s: %w", image, err)
	}
	return nil
}

// pruneAge is how old another build's image must be before it is
// pruned. An image is in use only while a container runs from it, and a
// suite starts a mesh per scenario: between two scenarios of a run of
// another checkout, its images are idle but still wanted. An hour covers a
// suite (the whole catalog takes minutes) and still bounds the pile.
const pruneAge = time.Hour

// pruneOld removes the images of repos other than tag keep, built before
// olderThan, that no container uses, so that rebuilding does not pile them
// up; an image still in use refuses removal and stays.
func pruneOld(ctx context.Context, cli *testcontainers.DockerClient, repos []string, keep string, olderThan time.Time) {
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", LabelImage)})
	if err != nil {
		return
	}
	for _, img := range imgs.Items {
		if !time.Unix(img.Created, 0).Before(olderThan) {
			continue
		}
		for _, ref := range img.RepoTags {
			repo, tag, _ := strings.Cut(ref, ":")
			if tag == keep || !slices.Contains(repos, repo) {
				continue
			}
			_, _ = cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
		}
	}
}

// checkStatic refuses a dynamically linked binary: FROM scratch has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("the docker runtime puts %s in its images, but it is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("the docker runtime puts %s in its images (FROM scratch), but it is dynamically linked: build it with CGO_ENABLED=0 (make build does)", path)
		}
	}
	return nil
}

func FileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// buildContext is a tar of the Dockerfile and the binary.
func buildContext(binary, dockerfile string) (io.ReadSeeker, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"meshbench", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return bytes.NewReader(buf.Bytes()), nil
}

// quiet drops testcontainers-go's progress lines; the runtime logs its own.
type quiet struct{}

func (quiet) Printf(string, ...any) {}

// ErrNoEngine is returned where no Docker engine answers.
var ErrNoEngine = errors.New("no Docker engine answers")

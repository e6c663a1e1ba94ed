package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoWith makes a git repository holding one Go package whose file is
// src, committed, and returns its path.
func repoWith(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":           "module example.com/b\n\ngo 1.22\n",
		"b/b_test.go":      src,
		"b/placeholder.go": "package b\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// worktrees lists the repository's worktrees, the main one included.
func worktrees(t *testing.T, repo string) []string {
	t.Helper()
	cmd := exec.Command("git", "worktree", "list", "--porcelain")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var trees []string
	for _, line := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(line, "worktree "); ok {
			trees = append(trees, p)
		}
	}
	return trees
}

// tempRoot points os.MkdirTemp at a folder of the test's own and returns
// a check that nothing was left in it.
func tempRoot(t *testing.T) func() {
	t.Helper()
	root := t.TempDir()
	t.Setenv("TMPDIR", root)
	return func() {
		t.Helper()
		left, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("left in the temporary folder: %v", left)
		}
	}
}

var benchArgs = []string{"-run", "^$", "-bench", ".", "-benchtime", "1x", "./..."}

func TestRunBenchmarksTheRefAndRemovesItsWorktree(t *testing.T) {
	repo := repoWith(t, "package b\n\nimport \"testing\"\n\nfunc BenchmarkOne(b *testing.B) { b.ReportMetric(7, \"things\") }\n")
	out := filepath.Join(t.TempDir(), "base.txt")
	defer tempRoot(t)()
	if err := run(context.Background(), repo, "HEAD", out, benchArgs); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "BenchmarkOne") || !strings.Contains(string(got), "7.000 things") {
		t.Errorf("output lacks the benchmark's line:\n%s", got)
	}
	if trees := worktrees(t, repo); len(trees) != 1 {
		t.Errorf("worktrees left: %v", trees)
	}
}

func TestRunRemovesTheWorktreeOnFailure(t *testing.T) {
	for name, c := range map[string]struct{ src, ref string }{
		"failing benchmark": {"package b\n\nimport \"testing\"\n\nfunc BenchmarkOne(b *testing.B) { b.Fatal(\"broken at this ref\") }\n", "HEAD"},
		"unknown ref":       {"package b\n", "no-such-ref"},
	} {
		t.Run(name, func(t *testing.T) {
			repo := repoWith(t, c.src)
			out := filepath.Join(t.TempDir(), "base.txt")
			defer tempRoot(t)()
			if err := run(context.Background(), repo, c.ref, out, benchArgs); err == nil {
				t.Fatal("no error")
			}
			if trees := worktrees(t, repo); len(trees) != 1 {
				t.Errorf("worktrees left: %v", trees)
			}
		})
	}
}

package spec

import (
	"fmt"
	"io"
	"io/fs"

	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"go.yaml.in/yaml/v3"
)

// Limits on what a scenario may ask for. Each keeps a bad or hostile input
// from exhausting the machine (or a dependency's assumptions) after
// validation said yes; every one is checked at load time, with file, line
// and field.
const (
	// MaxFileSize bounds each file read (a scenario, a mesh file). yaml.v3
	// builds the whole tree of a file before it can be measured, at about
	// 300 bytes a node, and the densest YAML ("[a,a,a,…]") is a node per
	// two bytes: 512 KiB is at most 100 MB and half a second. The catalog's
	// largest file is a few KiB.
	MaxFileSize = 512 << 10

	// MaxTotalInput bounds the bytes of all the files of one scenario
	// together (a scenario may name the same mesh file many times).
	MaxTotalInput = 4 << 20

	// MaxNodes bounds the YAML nodes of a scenario's files together, counting each alias as
	// the nodes it stands for. A billion-laughs file is a few hundred bytes
	// that expands to billions of nodes; everything downstream (the line
	// index, strict decoding, the spec converter) walks the expanded tree.
	// 3,000 services with their versions are about 30,000 nodes.
	MaxNodes = 200_000

	// MaxMappingKeys bounds the keys of one mapping: yaml.v3 checks a
	// mapping's keys for duplicates pair by pair when it decodes into a
	// struct or map (quadratic: 20,000 keys take seconds, 1,000,000 never
	// finish). 1,000 keys is 500,000 comparisons.
	MaxMappingKeys = 1000

	// MaxRate bounds the load's rate. The local mesh serves a few thousand
	// requests per second on a laptop, so beyond this vegeta and the
	// collection of samples are measured, not the mesh; and vegeta's
	// ConstantPacer computes its interval in whole nanoseconds and divides
	// by it, so past 10⁹/s it panics.
	MaxRate = 20_000.0

	// MaxRequests bounds rate × duration of the load: every sample is kept
	// in memory for the checks, a few hundred bytes each.
	MaxRequests = 1_000_000

	// MaxPods bounds the pods of a topology: the local runtime gives each
	// pod, and the ingress gateway, an address of one loopback /24 (250
	// addresses; the docker runtime's network has 253).
	MaxPods = 250 - 1

	// MaxRegexLength bounds an RE2 pattern, as Istio's validation does
	// (validateStringRegexp in pkg/config/validation/validation.go), which
	// stands in for Envoy's re2.max_program_size.
	MaxRegexLength = 1024
)

// readInputFile reads name from fsys if it is a regular file of at most
// MaxFileSize bytes. A FIFO, a device (/dev/zero) or a directory is refused
// before it is opened, so reading never blocks and never grows without
// bound; the size is checked again on the open file and the read is capped,
// in case the file changed in between.
func readInputFile(fsys fs.FS, name string) ([]byte, error) {
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if err := checkInputFileInfo(st); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, unwrapPathError(err)
	}
	if err := checkInputFileInfo(st); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("the file is larger than %s", sizeText(MaxFileSize))
	}
	return data, nil
}

// checkInputFileInfo refuses what is not a regular file of bounded size.
func checkInputFileInfo(st fs.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", fileKind(st.Mode()))
	}
	if st.Size() > MaxFileSize {
		return fmt.Errorf("the file is %d bytes; the limit is %s", st.Size(), sizeText(MaxFileSize))
	}
	return nil
}

// sizeText writes a limit in bytes as KiB or MiB.
func sizeText(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "an irregular file"
}

// nodeBudget counts the nodes of YAML documents as they expand (an alias
// counts as the tree it stands for) and finds mappings with too many keys.
// Sizes are remembered per node, so counting is linear in the parsed tree
// however far the aliases multiply it.
type nodeBudget struct {
	used  int
	sizes map[*yaml.Node]int
}

func newNodeBudget() *nodeBudget { return &nodeBudget{sizes: map[*yaml.Node]int{}} }

// budgetError is the first limit a document broke, at its node.
type budgetError struct {
	node *yaml.Node
	msg  string
}

// spend adds the expanded size of the document rooted at n; it reports the
// first limit broken.
func (b *nodeBudget) spend(n *yaml.Node) *budgetError {
	size, err := b.size(n, 0)
	if err != nil {
		return err
	}
	b.used += size
	if b.used > MaxNodes {
		return &budgetError{n, fmt.Sprintf("the scenario's files expand to more than %d YAML nodes (aliases count as what they repeat)", MaxNodes)}
	}
	return nil
}

// size is the expanded node count of n, at most MaxNodes+1.
func (b *nodeBudget) size(n *yaml.Node, depth int) (int, *budgetError) {
	if n == nil {
		return 0, nil
	}
	if s, ok := b.sizes[n]; ok {
		return s, nil
	}
	if depth > maxDepth {
		return 0, &budgetError{n, fmt.Sprintf("the YAML nests deeper than %d levels", maxDepth)}
	}
	if n.Kind == yaml.MappingNode && len(n.Content)/2 > MaxMappingKeys {
		return 0, &budgetError{n, fmt.Sprintf("a mapping of %d keys; the limit is %d", len(n.Content)/2, MaxMappingKeys)}
	}
	b.sizes[n] = MaxNodes + 1 // an alias that reaches its own anchor counts as too big
	children := n.Content
	if n.Kind == yaml.AliasNode {
		children = []*yaml.Node{n.Alias}
	}
	total := 1
	for _, c := range children {
		s, err := b.size(c, depth+1)
		if err != nil {
			return 0, err
		}
		total = min(total+s, MaxNodes+1)
	}
	if total > MaxNodes {
		// The smallest subtree past the limit: where an alias bomb goes off.
		return 0, &budgetError{n, fmt.Sprintf("this expands to more than %d YAML nodes (each alias counts as what it repeats)", MaxNodes)}
	}
	b.sizes[n] = total
	return total, nil
}

// maxDepth bounds nesting: the walks over the tree recurse.
const maxDepth = 100

// checkBudget reports, for file, the first limit the document broke; false
// then, and no further file is read.
func (l *loader) checkBudget(doc *yaml.Node, file string) bool {
	if err := l.budget.spend(doc); err != nil {
		l.add(file, err.node.Line, pathTo(doc, err.node), "%s", err.msg)
		l.overBudget = true
		return false
	}
	return true
}

// readFile reads one input file within MaxFileSize and what is left of
// MaxTotalInput.
func (l *loader) readFile(name string) ([]byte, error) {
	data, err := readInputFile(l.fsys, name)
	if err != nil {
		return nil, err
	}
	l.inputBytes += len(data)
	if l.inputBytes > MaxTotalInput {
		l.overBudget = true
		return nil, fmt.Errorf("the scenario's files add up to more than %s", sizeText(MaxTotalInput))
	}
	return data, nil
}

// pathTo is the field path of target in the tree under root, without
// following aliases (so it is found in time linear in the parsed file); ""
// when target is root or not found.
func pathTo(root, target *yaml.Node) string {
	p, _ := findPath(yamlnode.Deref(root), target, "", 0)
	return p
}

func findPath(n, target *yaml.Node, p string, depth int) (string, bool) {
	if n == target {
		return p, true
	}
	if n == nil || n.Kind == yaml.AliasNode || depth > maxDepth {
		return "", false
	}
	for i, c := range n.Content {
		cp := yamlnode.Item(p, i)
		if n.Kind == yaml.MappingNode {
			cp = yamlnode.Join(p, n.Content[i-i%2].Value)
		}
		if found, ok := findPath(c, target, cp, depth+1); ok {
			return found, true
		}
	}
	return "", false
}

// MaxWorkers bounds the requests one load stream keeps in flight, and so
// load.concurrency.
const MaxWorkers = 512

package configs

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// Embedded returns the embedded default configuration, what `sfu` runs on
// without --config: loopback-friendly, rooms created on first join, no
// authentication. (Defaults, by contrast, are the values of the keys a
// file leaves out.)
func Embedded() Config {
	cfg, err := Parse("default.yaml", defaultYAML)
	if err != nil {
		// The embedded file is tested; failing here is a build defect.
		panic(fmt.Sprintf("configs: embedded default is invalid: %v", err))
	}
	return cfg
}

// DefaultYAML returns the text of the embedded default configuration.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Load reads and validates the configuration file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Problem is one thing wrong with a configuration file.
type Problem struct {
	Line int    // 1-based line in the file, 0 when unknown
	Path string // dotted key path, e.g. "ice.udp_port"
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found in one file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.File + ": " + p.String()
	}
	return strings.Join(lines, "\n")
}

// Parse decodes and validates a configuration from data; name labels errors.
// Keys the file leaves out keep the values of Defaults.
func Parse(name string, data []byte) (Config, error) {
	cfg := Defaults()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // empty file: all defaults
			return cfg, cfg.validate(name, nil)
		}
		return Config{}, &Error{File: name, Problems: []Problem{syntaxProblem(err)}}
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return Config{}, &Error{File: name, Problems: []Problem{{Line: more.Line, Msg: "only one YAML document is allowed"}}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	lines := map[string]int{}
	var problems []Problem
	checkKeys(root, reflect.TypeOf(cfg), "", lines, &problems)
	if len(problems) > 0 {
		return Config{}, &Error{File: name, Problems: problems}
	}
	if err := root.Decode(&cfg); err != nil {
		return Config{}, &Error{File: name, Problems: typeProblems(err)}
	}
	return cfg, cfg.validate(name, lines)
}

// Validate checks a configuration built or changed in code (e.g. after
// command-line overrides).
func (c Config) Validate() error { return c.validate("config", nil) }

func syntaxProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ":"); ok {
			if v, convErr := strconv.Atoi(n); convErr == nil {
				line, msg = v, strings.TrimSpace(after)
			}
		}
	}
	return Problem{Line: line, Msg: "invalid YAML: " + msg}
}

func typeProblems(err error) []Problem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{syntaxProblem(err)}
	}
	out := make([]Problem, 0, len(te.Errors))
	for _, e := range te.Errors {
		out = append(out, syntaxProblem(errors.New(e)))
	}
	return out
}

// checkKeys walks the YAML tree beside the Go type it decodes into, reporting
// every mapping key that names no field, and records each key's line.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[string]int, problems *[]Problem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch with its line
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				*problems = append(*problems, Problem{
					Line: k.Line, Path: path,
					Msg: fmt.Sprintf("unknown key %q%s", k.Value, suggest(k.Value, fields)),
				})
				continue
			}
			lines[child] = k.Line
			checkKeys(v, f.Type, child, lines, problems)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			lines[child] = item.Line
			checkKeys(item, t.Elem(), child, lines, problems)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if name, ok := yamlName(f); ok {
			out[name] = f
		}
	}
	return out
}

// yamlName is the key of field f in the file, as the YAML decoder reads
// it; false for a field the file cannot set.
func yamlName(f reflect.StructField) (string, bool) {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return "", false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names the closest known key, or lists them all.
func suggest(key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, name := range names {
		d := editDistance(key, name)
		if strings.HasPrefix(key, name) || strings.HasPrefix(name, key) {
			d = min(d, 2) // "listen_addr" is close to "listen"
		}
		if d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

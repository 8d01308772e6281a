package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// A small Dockerfile reader: enough of the syntax for the files in this
// directory (line continuations, comments, flags, exec-form JSON), no more.

// instruction is one Dockerfile instruction.
type instruction struct {
	line  int               // first line, 1-based
	cmd   string            // upper-case keyword: FROM, RUN, COPY...
	flags map[string]string // --name=value flags before the arguments
	args  string            // the rest, flags removed, continuations joined
}

// execForm returns the JSON array of CMD, ENTRYPOINT or RUN in exec form.
func (in instruction) execForm() ([]string, bool) {
	if !strings.HasPrefix(in.args, "[") {
		return nil, false
	}
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		return nil, false
	}
	return v, true
}

// stage is a FROM and the instructions up to the next one.
type stage struct {
	from  string // image reference, global ARGs expanded
	name  string // AS name, if any
	instr []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instr {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last returns the stage's last cmd instruction, which is the one in force.
func (s stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

type dockerfile struct {
	globalArgs map[string]string // ARGs before the first FROM, with defaults
	stages     []stage
}

func (d dockerfile) final() stage { return d.stages[len(d.stages)-1] }

func (d dockerfile) stageNamed(name string) (stage, bool) {
	for _, s := range d.stages {
		if s.name == name {
			return s, true
		}
	}
	return stage{}, false
}

// splitInstructions joins continued lines and drops comments and blank lines.
func splitInstructions(src string) ([]instruction, error) {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue // both may sit inside a continuation, too
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		in, err := parseInstruction(start, cur.String())
		if err != nil {
			return nil, err
		}
		out = append(out, in)
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: continuation at end of file", start)
	}
	return out, nil
}

func parseInstruction(line int, text string) (instruction, error) {
	cmd, rest, _ := strings.Cut(text, " ")
	in := instruction{line: line, cmd: strings.ToUpper(cmd), flags: map[string]string{}}
	if !regexp.MustCompile(`^[A-Z]+$`).MatchString(in.cmd) {
		return in, fmt.Errorf("line %d: not an instruction: %q", line, text)
	}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		name, value, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		in.flags[name] = value
		rest = strings.TrimSpace(after)
	}
	in.args = strings.Join(strings.Fields(rest), " ")
	return in, nil
}

func parseDockerfile(src string) (dockerfile, error) {
	instrs, err := splitInstructions(src)
	if err != nil {
		return dockerfile{}, err
	}
	d := dockerfile{globalArgs: map[string]string{}}
	for _, in := range instrs {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := stage{from: expandArgs(f[0], d.globalArgs)}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			} else if len(f) != 1 {
				return d, fmt.Errorf("line %d: FROM %q", in.line, in.args)
			}
			d.stages = append(d.stages, s)
		case len(d.stages) == 0 && in.cmd == "ARG":
			name, def, _ := strings.Cut(in.args, "=")
			d.globalArgs[name] = def
		case len(d.stages) == 0:
			return d, fmt.Errorf("line %d: %s before FROM", in.line, in.cmd)
		default:
			s := &d.stages[len(d.stages)-1]
			s.instr = append(s.instr, in)
		}
	}
	if len(d.stages) == 0 {
		return d, fmt.Errorf("no FROM")
	}
	return d, nil
}

func expandArgs(s string, args map[string]string) string {
	return os.Expand(s, func(name string) string { return args[name] })
}

// labels returns the LABEL key/value pairs of s, quotes removed.
func (s stage) labels() map[string]string {
	out := map[string]string{}
	re := regexp.MustCompile(`([A-Za-z0-9._-]+)=("(?:[^"\\]|\\.)*"|\S+)`)
	for _, in := range s.all("LABEL") {
		for _, m := range re.FindAllStringSubmatch(in.args, -1) {
			out[m[1]] = strings.Trim(m[2], `"`)
		}
	}
	return out
}

// copies returns the COPY instructions of s as sources and destination.
func (s stage) copies() []copyInstr {
	var out []copyInstr
	for _, in := range s.all("COPY") {
		f := strings.Fields(in.args)
		if v, ok := in.execForm(); ok {
			f = v
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, copyInstr{from: in.flags["from"], srcs: f[:len(f)-1], dest: f[len(f)-1], line: in.line})
	}
	return out
}

type copyInstr struct {
	from string // --from stage or image; empty for the build context
	srcs []string
	dest string
	line int
}

func TestParseDockerfile(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\nARG V=1.2\nFROM img:${V} AS b\nRUN a \\\n  # note\n  && b\nCOPY --from=b /x /y\nCMD [\"p\", \"-q\"]\n"
	d, err := parseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	s := d.final()
	if s.from != "img:1.2" || s.name != "b" {
		t.Errorf("stage got %q as %q; want img:1.2 as b", s.from, s.name)
	}
	run, _ := s.last("RUN")
	if run.args != "a && b" || run.line != 4 {
		t.Errorf("RUN got %q at line %d; want \"a && b\" at line 4", run.args, run.line)
	}
	c := s.copies()
	if len(c) != 1 || c[0].from != "b" || c[0].dest != "/y" {
		t.Errorf("COPY got %+v; want from b to /y", c)
	}
	cmd, _ := s.last("CMD")
	if v, ok := cmd.execForm(); !ok || len(v) != 2 || v[1] != "-q" {
		t.Errorf("CMD got %q; want [p -q]", v)
	}
	for _, bad := range []string{"RUN x\n", "FROM a b c d\n", "FROM a\nRUN x \\\n", "FROM a\nnot-an-instruction\n"} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("parseDockerfile(%q): got no error; want one", bad)
		}
	}
}

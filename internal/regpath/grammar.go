package regpath

import "strings"

// ValidRepository reports whether name is a repository name of the
// distribution grammar: components joined by '/', at most MaxRepository bytes.
func ValidRepository(name string) bool {
	if name == "" || len(name) > MaxRepository {
		return false
	}
	for {
		c, rest, more := strings.Cut(name, "/")
		if !ValidComponent(c) {
			return false
		}
		if !more {
			return true
		}
		name = rest
	}
}

// ValidComponent reports whether c is one path component of a repository
// name: [a-z0-9]+ runs separated by '.', '_', '__' or one or more '-'.
func ValidComponent(c string) bool {
	if c == "" || !alnum(c[0]) || !alnum(c[len(c)-1]) {
		return false
	}
	for i := 1; i < len(c); i++ {
		switch c[i] {
		case '.':
		case '_':
			if c[i+1] == '_' { // c[i+1] exists: the last byte is alnum
				i++
			}
		case '-':
			for c[i+1] == '-' {
				i++
			}
		default:
			if alnum(c[i]) {
				continue
			}
			return false
		}
		if !alnum(c[i+1]) { // a separator is followed by [a-z0-9]
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func word(c byte) bool { return alnum(c) || 'A' <= c && c <= 'Z' || c == '_' }

// ValidTag reports whether t matches [\w][\w.-]{0,127}.
func ValidTag(t string) bool {
	if t == "" || len(t) > maxTag || !word(t[0]) {
		return false
	}
	for i := 1; i < len(t); i++ {
		if c := t[i]; !word(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// ValidDigest reports whether d is algorithm:encoded as the OCI image spec
// defines it: algorithm [a-z0-9]+ runs separated by one of [+._-], encoded
// [a-zA-Z0-9=_-]+; sha256 and sha512 must be lowercase hex of their length.
func ValidDigest(d string) bool {
	if len(d) > maxDigest {
		return false
	}
	algo, enc, ok := strings.Cut(d, ":")
	if !ok || algo == "" || enc == "" || !alnum(algo[0]) || !alnum(algo[len(algo)-1]) {
		return false
	}
	for i := 1; i < len(algo); i++ {
		c := algo[i]
		if alnum(c) {
			continue
		}
		if c != '+' && c != '.' && c != '_' && c != '-' || !alnum(algo[i+1]) {
			return false
		}
	}
	switch algo {
	case "sha256":
		return len(enc) == 64 && lowerHex(enc)
	case "sha512":
		return len(enc) == 128 && lowerHex(enc)
	}
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; !word(c) && c != '=' && c != '-' {
			return false
		}
	}
	return true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validUpload reports whether id is an upload session id as distribution
// routes it: [a-zA-Z0-9-_.=]+ (never "." or ".." alone: Parse refuses "..").
func validUpload(id string) bool {
	if id == "" || len(id) > maxUpload || id == "." {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !word(c) && c != '-' && c != '.' && c != '=' {
			return false
		}
	}
	return true
}

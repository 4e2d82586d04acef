package pictures

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// A README shows a picture in a block between two markers, which the redraw command fills in
// and the test of the pictures checks, as the output blocks are for the programs' output:
//
//	<!-- picture: cpu.svg -->
//	![stage3-nonblocking: CPU use, idle and then talking](cpu.svg)
//
//	*Measured 2026-12-06 20:05 UTC on ...* stage3-nonblocking used 99% of a core ...
//	<!-- end of picture -->
//
// The path is the SVG's from the README's folder. The paragraph under the image is its text
// alternative, for screen readers and for whoever reads the README in a terminal: when and
// where it was measured, and the figures the picture shows.
var pictureBlock = regexp.MustCompile(`(?s)<!-- picture: (\S+) -->\n(.*?)<!-- end of picture -->\n`)

// Block is a picture block of a README.
type Block struct {
	README string // the README's path, relative to the root
	SVG    string // the picture's path, relative to the root
	Text   string // what the block holds now, between its markers
}

// ReadmeBlocks finds the picture blocks of every README.md under root.
func ReadmeBlocks(root string) ([]Block, error) {
	var blocks []Block
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entry.IsDir() && strings.HasPrefix(entry.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if entry.Name() != "README.md" {
			return nil
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		readme, _ := filepath.Rel(root, path)
		for _, m := range pictureBlock.FindAllStringSubmatch(string(text), -1) {
			blocks = append(blocks, Block{README: readme, SVG: filepath.Join(filepath.Dir(readme), m[1]), Text: m[2]})
		}
		return nil
	})
	return blocks, err
}

// BlockText is what a README's block for the drawing holds, the paragraph wrapped by wrap;
// ref is the SVG's path from the README's folder.
func BlockText(ref string, d Drawing, wrap func(string) string) string {
	text := fmt.Sprintf("![%s](%s)\n\n%s", d.Title, ref, wrap("*"+d.Measured+"* "+d.Text))
	if d.Table != "" {
		text += "\n" + d.Table
	}
	return text
}

// SameText reports whether two texts differ only in where their lines break.
func SameText(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

// UpdateReadme rewrites the picture blocks of the README at path (relative to root) from
// drawings (by SVG path, relative to root), and reports whether it changed anything. A block
// that says the same in other line breaks is left as it is.
func UpdateReadme(root, path string, drawings map[string]Drawing, wrap func(string) string) (bool, error) {
	full := filepath.Join(root, path)
	text, err := os.ReadFile(full)
	if err != nil {
		return false, err
	}
	var missing []string
	updated := pictureBlock.ReplaceAllStringFunc(string(text), func(block string) string {
		m := pictureBlock.FindStringSubmatch(block)
		d, ok := drawings[filepath.Join(filepath.Dir(path), m[1])]
		if !ok {
			missing = append(missing, m[1])
			return block
		}
		want := BlockText(m[1], d, wrap)
		if SameText(want, m[2]) {
			return block
		}
		return "<!-- picture: " + m[1] + " -->\n" + want + "<!-- end of picture -->\n"
	})
	if len(missing) > 0 {
		return false, fmt.Errorf("%s shows %s, which is not drawn", path, strings.Join(missing, ", "))
	}
	if updated == string(text) {
		return false, nil
	}
	return true, os.WriteFile(full, []byte(updated), 0o644)
}

package main

// diffLine is one line of a diff: in both files (' '), only the old ('-'),
// or only the new ('+'), with its line number in each file it is in.
type diffLine struct {
	Op       byte
	Old, New int // 1-based; 0 when the line is not in that file
}

// hunk is a run of changes with the unchanged lines around them.
type hunk []diffLine

// diffLines compares two files' lines, leaving out the lines skip marks
// (region markers), and groups the changes into hunks with context lines of
// unchanged code around each.
func diffLines(old, new []string, skipOld, skipNew []bool, context int) []hunk {
	a, b := visible(old, skipOld), visible(new, skipNew)
	// Longest common subsequence, by dynamic programming over the lines
	// after the common prefix and suffix: chapter programs are a few
	// hundred lines and differ a little.
	pre := 0
	for pre < len(a) && pre < len(b) && old[a[pre]] == new[b[pre]] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && old[a[len(a)-1-suf]] == new[b[len(b)-1-suf]] {
		suf++
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(ma), len(mb)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if old[ma[i]] == new[mb[j]] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var all []diffLine
	for i := 0; i < pre; i++ {
		all = append(all, diffLine{' ', a[i] + 1, b[i] + 1})
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && old[ma[i]] == new[mb[j]]:
			all = append(all, diffLine{' ', ma[i] + 1, mb[j] + 1})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			// Deletions before insertions, as diff -u prints them.
			all = append(all, diffLine{'-', ma[i] + 1, 0})
			i++
		default:
			all = append(all, diffLine{'+', 0, mb[j] + 1})
			j++
		}
	}
	for k := suf; k > 0; k-- {
		all = append(all, diffLine{' ', a[len(a)-k] + 1, b[len(b)-k] + 1})
	}
	return hunks(all, context)
}

// visible lists the indexes of the lines that skip does not mark.
func visible(lines []string, skip []bool) []int {
	var idx []int
	for i := range lines {
		if skip == nil || !skip[i] {
			idx = append(idx, i)
		}
	}
	return idx
}

// hunks keeps each change with up to context unchanged lines on each side,
// merging changes whose context would touch.
func hunks(all []diffLine, context int) []hunk {
	keep := make([]bool, len(all))
	for i, l := range all {
		if l.Op == ' ' {
			continue
		}
		for k := max(0, i-context); k <= min(len(all)-1, i+context); k++ {
			keep[k] = true
		}
	}
	var out []hunk
	var cur hunk
	for i, l := range all {
		if keep[i] {
			cur = append(cur, l)
		} else if cur != nil {
			out = append(out, cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

package menu

import (
	"sort"
	"strings"
	"unicode"
)

// match is one item that passes the filter, with the score that orders it.
type match struct {
	index int // into the item list
	score int
}

// fuzzyScore reports whether every rune of pattern occurs in text in order
// (case-insensitive) and how good the best such alignment is. Higher is
// better. The bonuses follow what people type: the start of a name, the
// start of a word inside it ("db" for "prod-db"), and runs of adjacent
// letters; gaps cost a little, so "web" ranks "web-1" above "w-e-b".
func fuzzyScore(pattern []rune, text string) (int, bool) {
	if len(pattern) == 0 {
		return 0, true
	}
	t := []rune(strings.ToLower(text))
	best, found := 0, false
	// Greedy alignment from every possible first position: names are short,
	// so this is cheap, and it finds the word-start alignment greedy-from-0
	// would miss ("db" in "dbx-prod-db" prefers either, both score well).
	for start := range t {
		if t[start] != pattern[0] {
			continue
		}
		score, pi, last := 0, 0, -2
		for i := start; i < len(t) && pi < len(pattern); i++ {
			if t[i] != pattern[pi] {
				continue
			}
			switch {
			case i == 0:
				score += 30
			case isSeparator(t[i-1]):
				score += 10
			}
			if last == i-1 {
				score += 25
			} else if last >= 0 {
				score -= i - last - 1 // gap
			}
			score += 10
			last = i
			pi++
		}
		if pi < len(pattern) {
			break // no later start can match either
		}
		score -= len(t) - len(pattern) // prefer shorter names on a tie
		if !found || score > best {
			best, found = score, true
		}
	}
	return best, found
}

func isSeparator(r rune) bool {
	return r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || unicode.IsSpace(r)
}

// filterItems returns the items that match pattern, best first. Name matches
// (fuzzy) come first; then items whose kind or description contains the
// pattern as a plain substring, so that "postgres" finds every database
// without the description's many letters making every item match fuzzily.
// Equal scores keep the configured order.
func filterItems(items []Item, pattern []rune) []match {
	out := make([]match, 0, len(items))
	lower := []rune(strings.ToLower(string(pattern)))
	needle := string(lower)
	for i, it := range items {
		if s, ok := fuzzyScore(lower, it.Name); ok {
			out = append(out, match{index: i, score: s + 1000})
			continue
		}
		if needle != "" && (strings.Contains(strings.ToLower(it.Kind), needle) ||
			strings.Contains(strings.ToLower(it.Description), needle)) {
			out = append(out, match{index: i, score: 0})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].score > out[b].score })
	return out
}

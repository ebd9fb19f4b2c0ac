package policy

import (
	"path"
	"slices"
	"sort"
	"strings"
)

// index is what Parse precomputes so that one decision costs a few map
// lookups and a walk over the rules of one target, not a glob match of
// every rule and role (issue 6: under 10 µs with 1,000 rules and 10,000
// targets; BenchmarkDecide). It is derived from the config alone and never
// changes; a reload builds a new Config and with it a new index.
type index struct {
	target     map[string]int   // target name → position in Config.Targets
	groupRoles map[string][]int // group → roles holding it, in config order
	roleWords  int              // len of a role bitset, in uint64 words
	perTarget  []targetIndex    // by position in Config.Targets
	ruleRoles  [][]int          // by rule: the roles it binds (empty: everyone)
}

// targetIndex is what applies to one target.
type targetIndex struct {
	reach   []uint64 // bitset of roles whose targets globs match it
	approve []uint64 // bitset of roles whose approve globs match it
	rules   []int    // rules whose target globs match it, in config order
}

// roleSet is a bitset of role positions.
type roleSet []uint64

func (s roleSet) has(i int) bool { return s[i/64]&(1<<(i%64)) != 0 }

func (s roleSet) intersects(o []uint64) bool {
	for i := range s {
		if s[i]&o[i] != 0 {
			return true
		}
	}
	return false
}

func setBit(s []uint64, i int) { s[i/64] |= 1 << (i % 64) }

// newIndex builds the index of a validated config. Globs are matched
// against the targets they can match only: the names are sorted once and
// each glob's literal prefix (what comes before its first wildcard)
// narrows it to a range of them, so "web-*" over 10,000 targets matches
// only the web-… names.
func newIndex(c *Config) *index {
	ix := &index{
		target:     make(map[string]int, len(c.Targets)),
		groupRoles: map[string][]int{},
		roleWords:  (len(c.Roles) + 63) / 64,
		perTarget:  make([]targetIndex, len(c.Targets)),
		ruleRoles:  make([][]int, len(c.Rules)),
	}
	if ix.roleWords == 0 {
		ix.roleWords = 1
	}
	for i, t := range c.Targets {
		if _, dup := ix.target[t.Name]; !dup {
			ix.target[t.Name] = i
		}
		ix.perTarget[i] = targetIndex{reach: make([]uint64, ix.roleWords), approve: make([]uint64, ix.roleWords)}
	}
	sorted := make([]int, len(c.Targets))
	for i := range sorted {
		sorted[i] = i
	}
	sort.SliceStable(sorted, func(a, b int) bool { return c.Targets[sorted[a]].Name < c.Targets[sorted[b]].Name })
	// each calls fn for every target position a glob matches.
	each := func(glob string, fn func(pos int)) {
		prefix := glob
		if i := strings.IndexAny(glob, `*?[\`); i >= 0 {
			prefix = glob[:i]
		}
		lo := sort.Search(len(sorted), func(k int) bool { return c.Targets[sorted[k]].Name >= prefix })
		for k := lo; k < len(sorted); k++ {
			name := c.Targets[sorted[k]].Name
			if !strings.HasPrefix(name, prefix) {
				break
			}
			if ok, err := path.Match(glob, name); err == nil && ok {
				fn(sorted[k])
			}
		}
	}
	roleByName := map[string]int{}
	for ri, r := range c.Roles {
		if _, dup := roleByName[r.Name]; !dup {
			roleByName[r.Name] = ri
		}
		for _, g := range r.Groups {
			if !slices.Contains(ix.groupRoles[g], ri) {
				ix.groupRoles[g] = append(ix.groupRoles[g], ri)
			}
		}
		for _, g := range r.Targets {
			each(g, func(pos int) { setBit(ix.perTarget[pos].reach, ri) })
		}
		for _, g := range r.Approve {
			each(g, func(pos int) { setBit(ix.perTarget[pos].approve, ri) })
		}
	}
	for ru, r := range c.Rules {
		for _, name := range r.Roles {
			if ri, ok := roleByName[name]; ok {
				ix.ruleRoles[ru] = append(ix.ruleRoles[ru], ri)
			} else {
				// Validation refuses unknown roles; should one get here,
				// a rule bound to nobody must not become a rule for all.
				ix.ruleRoles[ru] = append(ix.ruleRoles[ru], -1)
			}
		}
		for _, g := range r.Targets {
			each(g, func(pos int) {
				// Several globs of one rule may match one target: once.
				if l := ix.perTarget[pos].rules; len(l) == 0 || l[len(l)-1] != ru {
					ix.perTarget[pos].rules = append(ix.perTarget[pos].rules, ru)
				}
			})
		}
	}
	return ix
}

// held returns the roles an identity with these groups holds.
func (ix *index) held(groups []string) roleSet {
	s := make(roleSet, ix.roleWords)
	for _, g := range groups {
		for _, ri := range ix.groupRoles[g] {
			setBit(s, ri)
		}
	}
	return s
}

// binds reports whether rule ru applies to an identity holding roles.
func (ix *index) binds(ru int, roles roleSet) bool {
	rr := ix.ruleRoles[ru]
	if len(rr) == 0 {
		return true
	}
	for _, ri := range rr {
		if ri >= 0 && roles.has(ri) {
			return true
		}
	}
	return false
}

// lookup returns the index and the target's entry in it; ok is false for
// a nil config and for names that are not configured targets.
func (c *Config) lookup(target string) (*index, *targetIndex, bool) {
	ix := c.index()
	if ix == nil {
		return nil, nil, false
	}
	pos, ok := ix.target[target]
	if !ok {
		return ix, nil, false
	}
	return ix, &ix.perTarget[pos], true
}

// index returns the precomputed index: Parse builds it. A Config made any
// other way (Defaults, a literal in a test) gets one built on the spot.
func (c *Config) index() *index {
	if c == nil {
		return nil
	}
	if c.ix != nil {
		return c.ix
	}
	return newIndex(c)
}

// eachRule calls fn, in config order, for every rule that applies to an
// identity with these groups on target, until fn returns true. It is the
// allocation-free core of RulesFor and the Decide functions.
func (c *Config) eachRule(groups []string, target string, fn func(Rule) bool) {
	ix, ti, ok := c.lookup(target)
	if !ok {
		return
	}
	roles := ix.held(groups)
	for _, ru := range ti.rules {
		if ix.binds(ru, roles) && fn(c.Rules[ru]) {
			return
		}
	}
}

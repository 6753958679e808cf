//go:build race

package main

// raceEnabled: the race detector slows the binary several times over, so
// the attack suite's time and CPU bounds do not hold under it.
const raceEnabled = true

//go:build !race

package crm

const raceEnabled = false

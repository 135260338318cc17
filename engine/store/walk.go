package store

// Walks: the engine's long-running work over every record a store knows
// of one workspace and object, in chunks, resumable and done once across
// instances. Two kinds exist:
//
//   - a built-in schedule's tick (Name "s:AUTOMATION"): its mark is the
//     last tick done (Unix ms), its target the tick being walked;
//   - the re-arming of a date field's timers when the date automations of
//     that field changed (Name "d:FIELD"): its mark is the signature of the
//     automations the timers were last armed for, its target the new one.
//
// A walk is started (or resumed, or taken over once its lease ran out)
// with StartWalks, which gives the cursor to go on from; the engine reads
// the next chunk of known records with KnownRecords and, once the chunk's
// outputs are acknowledged, advances the walk (Writes.Advances) only if
// it still holds the lease. A walk towards another target than the one in
// progress starts over: after downtime a schedule walks its latest tick
// only.

// WalkRef names a walk over the known records of a workspace's object.
type WalkRef struct {
	Workspace, Object, Name string
}

// WalkStart asks to start or resume a walk towards Target. Ordered
// targets (ticks, decimal Unix ms) are done once the mark is at or past
// them; unordered ones (signatures) once the mark equals them.
type WalkStart struct {
	Ref     WalkRef
	Target  string
	Ordered bool
}

// WalkStatus is what StartWalks found.
type WalkStatus uint8

// Walk statuses.
const (
	// WalkOurs: the walk is ours (until the lease runs out); Cursor is
	// where it goes on.
	WalkOurs WalkStatus = iota + 1
	// WalkDone: the mark is at the target already.
	WalkDone
	// WalkBusy: another instance holds a live lease on it.
	WalkBusy
)

// WalkState is the result of starting a walk.
type WalkState struct {
	Status WalkStatus
	// Cursor is where the walk goes on ("" at its start), for KnownRecords.
	Cursor string
}

// WalkAdvance records a chunk of a walk as done, by the token that
// started it: the walk goes on from Cursor, or, Done, its mark becomes its
// target. It is ignored when the token no longer holds the walk's lease
// (another instance took it over and repeats the chunk; the outputs are
// the same, deduplicated by their deterministic ids).
type WalkAdvance struct {
	Ref           WalkRef
	Target, Token string
	Cursor        string
	Done          bool
}

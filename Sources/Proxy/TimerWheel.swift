// The worker's one timer structure (DESIGN.md §3): a hashed timing wheel with 1 ms ticks.
// Sans-I/O: it never reads a clock (the caller passes the worker's `nowMs`) and never calls
// back; the caller advances it and pops what expired.
//
// Every timer is identified by a small integer the caller owns (a connection slot, or an
// exchange slot offset by the connection capacity), so a timer costs no allocation: its node
// lives in an array indexed by that id. A node is in at most one slot list, the slot of the
// millisecond it was linked for (`linkedAtMs`):
//
//   schedule(id, at: T)   T ≥ linkedAtMs of a linked node ─► store T only (lazy: the node is
//                                                            visited at linkedAtMs ≤ T and
//                                                            moved on then)
//                         otherwise ─────────────────────► unlink, link into slot T % slots
//   cancel(id)            ─► store 0 only (dropped when its slot is visited)
//   advance(to: now)      visit each slot whose millisecond passed (at most every slot once):
//                         deadline 0 ─► drop; deadline ≤ now ─► expired list; else relink
//   popExpired()          ─► the next expired id, or -1; a timer cancelled or re-armed while
//                            it waited in the expired list is not returned (re-armed: linked)
//
// A timer due a wheel turn (1.024 s) or more ahead waits in an overflow list instead, which is
// looked at once per turn and hands over the timers that became due within the next turn: ten
// thousand idle keep-alive connections (60 s each) cost ten thousand node visits a second and
// no extra wake-ups. So re-arming a keep-alive or idle timeout to a later time on every request
// is two stores, and a timer far in the future costs nothing per tick.
// Precision: a timer expires at the first `advance` at or after its deadline; the worker asks
// `nextWakeMs` how long it may sleep, so that is within the loop's wake-up latency.

/// One timer. All-zero bytes are a valid unlinked node (the node array is reserved untouched).
struct TimerNode {
    /// When it expires (worker clock, ms); 0 = not armed.
    var deadlineMs: UInt64 = 0
    /// When the node will be looked at next (valid when `linked`): the millisecond of its slot,
    /// or for the overflow list the start of the next turn.
    var linkedAtMs: UInt64 = 0
    /// Linked in the overflow list rather than in slot `linkedAtMs % slotCount`.
    var overflow = false
    var next: Int32 = 0
    var prev: Int32 = 0
    /// In a slot list (`next`/`prev` valid).
    var linked = false
    /// In the expired list, not popped yet (`next` valid).
    var pending = false
}

struct TimerWheel: ~Copyable {
    /// 1024 slots of 1 ms: a timer due within a second is linked exactly; later ones are
    /// relinked once per turn. A power of two so the slot is `ms & mask`.
    static let slotCount = 1024
    static let mask = UInt64(slotCount - 1)

    let nodes: UnsafeMutablePointer<TimerNode>
    let capacity: Int32
    /// First node of each slot's list, -1 when empty; `heads[slotCount]` is the overflow list.
    let heads: UnsafeMutablePointer<Int32>
    /// One bit per non-empty slot, to find the next one without walking empty slots.
    let occupied: UnsafeMutablePointer<UInt64>
    /// Every millisecond before this one has been visited.
    private(set) var currentMs: UInt64
    /// Expired timers not yet popped (a singly linked list through `next`).
    private var expiredHead: Int32 = -1
    private var expiredTail: Int32 = -1

    init(capacity: Int, nowMs: UInt64) {
        self.capacity = Int32(capacity)
        nodes = reserveSlab(TimerNode.self, count: capacity)
        heads = .allocate(capacity: TimerWheel.slotCount + 1)
        heads.initialize(repeating: -1, count: TimerWheel.slotCount + 1)
        occupied = .allocate(capacity: TimerWheel.slotCount / 64)
        occupied.initialize(repeating: 0, count: TimerWheel.slotCount / 64)
        currentMs = nowMs
    }

    /// The deadline timer `id` is armed for, 0 when none.
    @inline(__always)
    func deadline(_ id: Int32) -> UInt64 { nodes[Int(id)].deadlineMs }

    /// Arms (or re-arms) timer `id` to expire at `deadlineMs` (> 0; a time already past is
    /// returned by the next `popExpired`).
    @inline(__always)
    mutating func schedule(_ id: Int32, at deadlineMs: UInt64) {
        let n = nodes + Int(id)
        n.pointee.deadlineMs = deadlineMs
        if n.pointee.pending { return }   // popExpired links it
        if n.pointee.linked && deadlineMs >= n.pointee.linkedAtMs { return }
        if n.pointee.linked { unlink(id) }
        if deadlineMs < currentMs {
            appendExpired(id)   // already past every visited millisecond: due now
        } else {
            link(id, at: deadlineMs)
        }
    }

    /// Disarms timer `id` (lazily: its node leaves its slot when the slot is next visited).
    @inline(__always)
    mutating func cancel(_ id: Int32) {
        nodes[Int(id)].deadlineMs = 0
    }

    /// Visits every slot whose millisecond is ≤ `nowMs` and not visited yet (each slot at most
    /// once per call), moving expired timers to the expired list.
    mutating func advance(to nowMs: UInt64) {
        guard nowMs >= currentMs else { return }
        let span = min(nowMs - currentMs + 1, UInt64(TimerWheel.slotCount))
        var tick = currentMs
        currentMs = nowMs + 1
        for _ in 0..<span {
            let slot = Int(tick & TimerWheel.mask)
            if slot == 0 { visitOverflow(nowMs: nowMs) }
            tick += 1
            var id = heads[slot]
            guard id >= 0 else { continue }
            // Take the whole list first: nodes relinked below may land in this same slot.
            heads[slot] = -1
            occupied[slot >> 6] &= ~(1 << UInt64(slot & 63))
            while id >= 0 {
                let n = nodes + Int(id)
                let following = n.pointee.next
                n.pointee.linked = false
                let d = n.pointee.deadlineMs
                if d == 0 {
                    // cancelled: dropped
                } else if d <= nowMs {
                    appendExpired(id)
                } else {
                    link(id, at: d)
                }
                id = following
            }
        }
    }

    /// The start of the next turn at or after `currentMs`: when the overflow list is looked at.
    @inline(__always)
    var nextTurnMs: UInt64 { (currentMs + TimerWheel.mask) & ~TimerWheel.mask }

    /// A new turn started (during `advance`, with `currentMs` already past `nowMs`): timers of
    /// the overflow list due before the next visit move into their slots (they are within a
    /// turn now), cancelled ones are dropped, expired ones (the loop slept through a turn) go
    /// to the expired list; the rest wait for the next visit.
    private mutating func visitOverflow(nowMs: UInt64) {
        let nextVisit = nextTurnMs
        var id = heads[TimerWheel.slotCount]
        while id >= 0 {
            let n = nodes + Int(id)
            let following = n.pointee.next
            let d = n.pointee.deadlineMs
            if d == 0 {
                unlink(id)
            } else if d <= nowMs {
                unlink(id)
                appendExpired(id)
            } else if d < nextVisit {
                unlink(id)
                link(id, at: d)
            } else {
                n.pointee.linkedAtMs = nextVisit
            }
            id = following
        }
    }

    /// The next expired timer, or -1. Its node is disarmed; the caller may re-arm it.
    @inline(__always)
    mutating func popExpired() -> Int32 {
        while true {
            let id = expiredHead
            guard id >= 0 else { return -1 }
            let n = nodes + Int(id)
            expiredHead = n.pointee.next
            if expiredHead < 0 { expiredTail = -1 }
            n.pointee.pending = false
            let d = n.pointee.deadlineMs
            if d == 0 { continue }                 // cancelled while waiting
            if d >= currentMs {                    // re-armed for later while waiting
                link(id, at: d)
                continue
            }
            n.pointee.deadlineMs = 0
            return id
        }
    }

    /// The earliest millisecond at which a slot holds a node, at most `limitMs` (also when no
    /// timer is armed). A cancelled or later-moved node may make this early, never late.
    func nextWakeMs(limitMs: UInt64) -> UInt64 {
        var limitMs = limitMs
        if heads[TimerWheel.slotCount] >= 0 {
            // The overflow list is looked at when the next turn starts.
            limitMs = min(limitMs, nextTurnMs)
        }
        let start = Int(currentMs & TimerWheel.mask)
        let words = TimerWheel.slotCount / 64
        // Scan the bitmap from `start`, wrapping once.
        for k in 0...words {
            let w = (start / 64 + k) % words
            var bits = occupied[w]
            if k == 0 { bits &= ~UInt64(0) << UInt64(start & 63) }
            if k == words { bits &= (UInt64(1) << UInt64(start & 63)) &- 1 }
            if bits != 0 {
                let slot = w * 64 + bits.trailingZeroBitCount
                let ahead = (slot - start + TimerWheel.slotCount) % TimerWheel.slotCount
                return min(currentMs + UInt64(ahead), limitMs)
            }
        }
        return limitMs
    }

    /// Puts unlinked timer `id` at the end of the expired list.
    @inline(__always)
    private mutating func appendExpired(_ id: Int32) {
        nodes[Int(id)].pending = true
        nodes[Int(id)].next = -1
        if expiredTail >= 0 { nodes[Int(expiredTail)].next = id } else { expiredHead = id }
        expiredTail = id
    }

    /// Links `id` for millisecond `ms` (≥ currentMs): into its slot when that is less than a
    /// turn ahead, else into the overflow list (looked at when the next turn starts, which is
    /// before `ms`).
    @inline(__always)
    private mutating func link(_ id: Int32, at ms: UInt64) {
        let far = ms - currentMs >= UInt64(TimerWheel.slotCount)
        let slot = far ? TimerWheel.slotCount : Int(ms & TimerWheel.mask)
        let n = nodes + Int(id)
        let head = heads[slot]
        n.pointee.linked = true
        n.pointee.overflow = far
        n.pointee.linkedAtMs = far ? nextTurnMs : ms
        n.pointee.prev = -1
        n.pointee.next = head
        if head >= 0 { nodes[Int(head)].prev = id }
        heads[slot] = id
        if !far { occupied[slot >> 6] |= 1 << UInt64(slot & 63) }
    }

    @inline(__always)
    private mutating func unlink(_ id: Int32) {
        let n = nodes + Int(id)
        let slot = n.pointee.overflow ? TimerWheel.slotCount : Int(n.pointee.linkedAtMs & TimerWheel.mask)
        if n.pointee.prev >= 0 {
            nodes[Int(n.pointee.prev)].next = n.pointee.next
        } else {
            heads[slot] = n.pointee.next
            if n.pointee.next < 0 && slot < TimerWheel.slotCount { occupied[slot >> 6] &= ~(1 << UInt64(slot & 63)) }
        }
        if n.pointee.next >= 0 { nodes[Int(n.pointee.next)].prev = n.pointee.prev }
        n.pointee.linked = false
    }
}

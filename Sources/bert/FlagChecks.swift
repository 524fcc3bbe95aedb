import ArgumentParser

/// Range checks for numeric flags, run by each command's `validate()` before any work: every message names the flag,
/// the value given and what is allowed.
enum FlagCheck {
    /// `flag` must be at least `low` (when given).
    static func atLeast<T: Comparable & CustomStringConvertible>(_ flag: String, _ value: T?, _ low: T) throws {
        guard let value else { return }
        guard value >= low else { throw ValidationError("\(flag) \(value) is out of range: it must be at least \(low)") }
    }

    /// `flag` must be finite and in `range` (when given); `open` excludes the lower bound.
    static func within(_ flag: String, _ value: Double?, _ range: ClosedRange<Double>, open: Bool = false) throws {
        guard let value else { return }
        let inside = value.isFinite && range.contains(value) && !(open && value == range.lowerBound)
        guard inside else {
            let low = open ? "above \(range.lowerBound)" : "at least \(range.lowerBound)"
            let high = range.upperBound == .greatestFiniteMagnitude ? "" : " and at most \(range.upperBound)"
            throw ValidationError("\(flag) \(value) is out of range: it must be \(low)\(high)")
        }
    }

    /// A positive count.
    static func positive(_ flag: String, _ value: Int?) throws { try atLeast(flag, value, 1) }

    /// A positive, finite rate (a learning rate).
    static func positive(_ flag: String, _ value: Double?) throws {
        try within(flag, value, 0...Double.greatestFiniteMagnitude, open: true)
    }

    /// A finite value ≥ 0 (weight decay, a clipping norm, an exponent).
    static func nonNegative(_ flag: String, _ value: Double?) throws { try within(flag, value, 0...Double.greatestFiniteMagnitude) }

    /// A fraction in [0, 1].
    static func fraction(_ flag: String, _ value: Double?) throws { try within(flag, value, 0...1) }
}

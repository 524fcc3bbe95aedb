/// The product of sizes read from a file (a tensor's shape, a config's dimensions), or nil when a factor is negative
/// or the product overflows: such sizes come from outside and must end in an error, not a trap.
func checkedProduct(_ factors: [Int]) -> Int? {
    var product = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (p, overflow) = product.multipliedReportingOverflow(by: f)
        if overflow { return nil }
        product = p
    }
    return product
}

/// The sum of `terms`, or nil when it overflows.
func checkedSum(_ terms: [Int]) -> Int? {
    var sum = 0
    for t in terms {
        let (s, overflow) = sum.addingReportingOverflow(t)
        if overflow { return nil }
        sum = s
    }
    return sum
}

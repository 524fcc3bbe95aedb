import Testing
@testable import BERT

@Test func packageBuilds() { #expect(1 + 1 == 2) }

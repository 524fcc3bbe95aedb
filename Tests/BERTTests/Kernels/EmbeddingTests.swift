import BERTKernels
import Testing

@Suite struct EmbeddingTests {
    let B = 2, S = 3, H = 10, V = 6, P = 4, Tt = 2

    func forward(_ ids: [Int32], _ seg: [Int32], _ word: [Float], _ pos: [Float], _ type: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: B * S * H)
        Embedding.forward(ids: ids, segments: seg, word: word, position: pos, tokenType: type, out: &out,
                          batch: B, seqLength: S, hidden: H)
        return out
    }

    @Test func forwardAndBackward() {
        var r = TestRandom(3)
        let ids: [Int32] = [1, 5, 1, 0, 2, 5], seg: [Int32] = [0, 0, 1, 0, 1, 1]
        let word = r.normal(V * H), pos = r.normal(P * H), type = r.normal(Tt * H), dOut = r.normal(B * S * H)
        let out = forward(ids, seg, word, pos, type)
        #expect(out[4 * H + 7] == word[2 * H + 7] + pos[1 * H + 7] + type[1 * H + 7])

        var dWord = [Float](repeating: 0, count: V * H), dPos = [Float](repeating: 0, count: P * H)
        var dType = [Float](repeating: 0, count: Tt * H)
        Embedding.backward(dOut: dOut, ids: ids, segments: seg, dWord: &dWord, dPosition: &dPos, dTokenType: &dType,
                           batch: B, seqLength: S, hidden: H)
        #expect(finiteDifferenceError(word, analytic: dWord) { weightedSum(forward(ids, seg, $0, pos, type), dOut) } < 1e-3)
        #expect(finiteDifferenceError(pos, analytic: dPos) { weightedSum(forward(ids, seg, word, $0, type), dOut) } < 1e-3)
        #expect(finiteDifferenceError(type, analytic: dType) { weightedSum(forward(ids, seg, word, pos, $0), dOut) } < 1e-3)
        #expect(dWord[3 * H..<4 * H].allSatisfy { $0 == 0 }, "an unused word gets no gradient")
    }

    /// The padding id's word row gets no gradient; its position and token-type rows do.
    @Test func paddingRowGetsNoGradient() {
        var r = TestRandom(4)
        let ids: [Int32] = [1, 5, 0, 0, 2, 0], seg: [Int32] = [0, 0, 1, 0, 1, 1], dOut = r.normal(B * S * H)
        var dWord = [Float](repeating: 0, count: V * H), dPos = [Float](repeating: 0, count: P * H)
        var dType = [Float](repeating: 0, count: Tt * H)
        Embedding.backward(dOut: dOut, ids: ids, segments: seg, dWord: &dWord, dPosition: &dPos, dTokenType: &dType,
                           batch: B, seqLength: S, hidden: H, paddingId: 0)
        #expect(dWord[0..<H].allSatisfy { $0 == 0 })
        #expect(dWord[H + 3] == dOut[3] && dPos[2 * H + 3] == dOut[2 * H + 3] + dOut[5 * H + 3])
    }
}

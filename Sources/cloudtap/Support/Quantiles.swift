/// Nearest-rank quantiles of measurements, as every benchmark and `load` report them.
extension Array where Element: Comparable {
    /// The element at quantile `q` (0…1) of an array sorted ascending; nil when empty.
    func nearestRank(_ q: Double) -> Element? {
        isEmpty ? nil : self[Swift.min(count - 1, Int(Double(count) * q))]
    }
}

extension Duration {
    /// The duration in milliseconds.
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}

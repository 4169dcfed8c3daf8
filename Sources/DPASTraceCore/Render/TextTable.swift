/// A plain-text table with aligned columns: numbers right-aligned, words left-aligned.
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public struct Column: Sendable {
        public var title: String
        public var alignment: Alignment
        public init(_ title: String, _ alignment: Alignment = .right) {
            self.title = title
            self.alignment = alignment
        }
    }

    public var columns: [Column]
    public private(set) var rows: [[String]] = []

    public init(_ columns: [Column]) { self.columns = columns }

    public mutating func add(_ cells: [String]) {
        precondition(cells.count == columns.count, "a row needs one cell per column")
        rows.append(cells)
    }

    /// The table as lines: header, a rule, then the rows; `indent` spaces before each line.
    public func render(indent: Int = 0) -> [String] {
        var widths = columns.map { $0.title.count }
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        let prefix = String(repeating: " ", count: indent)
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { index, cell -> String in
                let fill = String(repeating: " ", count: widths[index] - cell.count)
                return columns[index].alignment == .right ? fill + cell : cell + fill
            }
            return prefix + trimmedRight(padded.joined(separator: "  "))
        }
        var lines = [line(columns.map(\.title))]
        lines.append(prefix + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        lines += rows.map(line)
        return lines
    }

    private func trimmedRight(_ text: String) -> String {
        var text = text
        while text.last == " " { text.removeLast() }
        return text
    }
}

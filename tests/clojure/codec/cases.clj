;; Interop cases shared by write_fixtures.clj and read_check.clj; the Rust
;; side (crates/codec/tests/reference.rs) defines the same cases by name.
;;
;; Each case is [name writer-fn expected-values]: writer-fn writes the case's
;; stream with a FressianWriter, expected-values is what reading the stream
;; must yield, in order. Most cases are a single value written with
;; write-object.
(require '[clojure.data.fressian :as fress])
(import '(org.fressian FressianWriter FressianReader TaggedObject)
        '(java.util Date UUID)
        '(java.net URI))

(defrecord Point [x y])

(defn pow2 [n] (bit-shift-left 1 n))

(def boundary-ints
  ;; Around every width the reference's packed integer encoding switches.
  (vec (distinct
        (concat [0 1 63 64 -1 -2 -64 -65 4095 4096 -4096 -4097 Long/MAX_VALUE Long/MIN_VALUE]
                (for [bits [12 19 25 33 41 49] d [-1 0] s [1 -1]]
                  (* s (+ (pow2 bits) d)))
                [(dec (- (pow2 19))) (dec (- (pow2 25))) (dec (- (pow2 33)))
                 (dec (- (pow2 41))) (dec (- (pow2 49)))]))))

(def all-scalars
  (let [sb (StringBuilder.)]
    (doseq [cp (range 0 0x110000) :when (not (<= 0xD800 cp 0xDFFF))]
      (.appendCodePoint sb (int cp)))
    (str sb)))

(defn repeat-str [n s] (apply str (repeat n s)))

(def many-keywords
  (vec (for [round [0 1] i (range 100)] (keyword (str "ns" (mod i 7)) (str "k" i)))))

(defn tagged [tag & fields] (TaggedObject. tag (object-array fields)))

(defn one [v] [(fn [^FressianWriter w] (fress/write-object w v)) [v]])

(def cases
  [["nil" (one nil)]
   ["true" (one true)]
   ["false" (one false)]
   ["ints" (one boundary-ints)]
   ["long-min" (one Long/MIN_VALUE)]
   ["long-max" (one Long/MAX_VALUE)]
   ["doubles" (one [0.0 1.0 -1.0 1.5 -2.5e-300 Double/NaN Double/POSITIVE_INFINITY
                     Double/NEGATIVE_INFINITY Double/MIN_VALUE Double/MAX_VALUE])]
   ["negative-zero" (one -0.0)]
   ["floats" (one [(float 0) (float 1.5) (float -2.25) Float/NaN Float/POSITIVE_INFINITY
                    Float/MIN_VALUE Float/MAX_VALUE])]
   ["empty-string" (one "")]
   ["short-string" (one "hello")]
   ["string" (one "hello, fressian world")]
   ["astral" (one "😀")]
   ["mixed-unicode" (one "aé€😀𝄞\u0000\uFFFF")]
   ["string-100k" (one (repeat-str 102400 "x"))]
   ["string-65536" (one (repeat-str 65536 "y"))]
   ["string-65537" (one (repeat-str 65537 "z"))]
   ["string-2byte-100k" (one (repeat-str 50000 "é"))]
   ["surrogate-at-chunk-boundary" (one (str (repeat-str 65533 "a") "😀b"))]
   ["all-scalars" (one all-scalars)]
   ["bytes-empty" (one (byte-array 0))]
   ["bytes-7" (one (byte-array [1 2 3 4 5 6 -1]))]
   ["bytes-8" (one (byte-array (range 8)))]
   ["bytes-65535" (one (byte-array (map #(unchecked-byte %) (range 65535))))]
   ["bytes-65536" (one (byte-array (map #(unchecked-byte %) (range 65536))))]
   ["bytes-200k" (one (byte-array (map #(unchecked-byte (* 7 %)) (range 200000))))]
   ["keywords" (one [:a :a/b :db/id :a :a/b :db.type/string (keyword "" "x") (keyword "n" "")])]
   ["many-keywords" (one many-keywords)]
   ["symbols" (one ['a 'a/b 'clojure.core/map 'a])]
   ["chars" (one [\a \é \€ (char 0xFFFF) \a])]
   ["insts" (one [(Date. 0) (Date. -1) (Date. -62135596800000) (Date. 1760817092123)
                  (Date. Long/MAX_VALUE)])]
   ["uuid" (one (UUID/fromString "c3b1d1a2-5f6e-4c7d-8e9f-0a1b2c3d4e5f"))]
   ["uri" (one (URI. "https://example.com/a?b=c#d"))]
   ["regex" (one #"a+b\d*")]
   ["bigints" (one [0N 1N -1N 127N 128N -128N -129N 255N 256N 18446744073709551616N
                    -18446744073709551616N 10000000000000000000000000000000000000000N
                    (biginteger 5) (biginteger -1234567890123456789012345)])]
   ["bigdecs" (one [0M 1.5M -1.50M 1E+10M 1E-10M 123456789012345678901234567890.123456789M
                    -0.000001M 1E+400M 1E-400M])]
   ["ratios" (one [1/3 -22/7 (/ 1000000000000000000000000000000N 7)])]
   ["vectors" (one [[] [1 2 3] [[1 [2 [3 []]]]] (vec (range 8)) (vec (range 100))])]
   ["list" (one '(1 "two" :three))]
   ["sets" (one [#{} (sorted-set 1 2 3) (sorted-set "a" "b")])]
   ["maps" (one [{} {:a 1 :b "x"} {:nested {:deeper [1 {:k :v}]}} {"s" nil 1 true}])]
   ["int-array" (one (int-array [1 -1 Integer/MAX_VALUE Integer/MIN_VALUE 0]))]
   ["long-array" (one (long-array [1 -1 Long/MAX_VALUE Long/MIN_VALUE]))]
   ["float-array" (one (float-array [0 1.5 -2.25]))]
   ["double-array" (one (double-array [0.0 1.0 1.5 -3.75]))]
   ["boolean-array" (one (boolean-array [true false true]))]
   ["object-array" (one (object-array [1 "a" nil :k]))]
   ["record" (one (->Point 1 "two"))]
   ["tagged" (one (tagged "my/tag" 1 "x" [2]))]
   ["struct-cache" (one (vec (for [round [0 1] i (range 20)] (tagged (str "tag" i) i))))]
   ["everything" (one {:nil nil :bool true :int 42 :neg -4097 :double 2.5 :string "s😀"
                        :kw :a/b :sym 'x/y :inst (Date. 5) :uuid (UUID. 1 2)
                        :bytes-count 3 :vec [1 [2]] :set (sorted-set 3 4)})]
   ["footer"
    [(fn [^FressianWriter w]
       (fress/write-object w :a/b)
       (.writeFooter w)
       (fress/write-object w [:a/b "after"])
       (.writeFooter w))
     [:a/b [:a/b "after"]]]]
   ["reset-caches"
    [(fn [^FressianWriter w]
       (fress/write-object w :k/a)
       (.resetCaches w)
       (fress/write-object w [:k/a :k/a]))
     [:k/a [:k/a :k/a]]]]
   ["two-values" [(fn [w] (fress/write-object w 1) (fress/write-object w "two")) [1 "two"]]]
   ["closed-list"
    [(fn [^FressianWriter w]
       (.beginClosedList w)
       (doseq [v [1 "two" :three]] (fress/write-object w v))
       (.endList w))
     [[1 "two" :three]]]]
   ["open-list"
    [(fn [^FressianWriter w]
       (.beginOpenList w)
       (doseq [v [1 "two" :three]] (fress/write-object w v)))
     [[1 "two" :three]]]]])

;; Only the reference writes these (a Rust string cannot hold a lone
;; surrogate): Rust must reject or replace them.
(def lone-surrogate-cases
  [["lone-high" (one "a\uD800b")]
   ["lone-low" (one "x\uDC00")]
   ["lone-char" (one (char 0xD800))]])

(defn normalize
  "A form that compares with = the way the interop tests mean equality:
  arrays by content, doubles and floats by bits, numbers by type and text."
  [x]
  (cond
    (nil? x) nil
    (instance? Double x) [:double (Double/doubleToLongBits x)]
    (instance? Float x) [:float (Float/floatToIntBits x)]
    (instance? Long x) [:long x]
    (instance? Integer x) [:long (long x)]
    (instance? clojure.lang.BigInt x) [:bigint (str x)]
    (instance? BigInteger x) [:bigint (str x)]
    (instance? BigDecimal x) [:bigdec (str x)]
    (instance? clojure.lang.Ratio x) [:ratio (str x)]
    (instance? Character x) [:char (int x)]
    (instance? java.util.regex.Pattern x) [:regex (.pattern ^java.util.regex.Pattern x)]
    (instance? Date x) [:inst (.getTime ^Date x)]
    (instance? TaggedObject x) [:tagged (.getTag ^TaggedObject x) (mapv normalize (.getValue ^TaggedObject x))]
    (record? x) [:record (.getName (class x)) (normalize (into {} x))]
    (.isArray (class x)) [:array (.getName (.getComponentType (class x))) (mapv normalize x)]
    (instance? java.util.Map x) [:map (into {} (map (fn [[k v]] [(normalize k) (normalize v)]) x))]
    (instance? java.util.Set x) [:set (set (map normalize x))]
    (instance? java.util.List x) [:list (mapv normalize x)]
    :else x))

(defn write-case-file [^String path writer-fn]
  (with-open [os (java.io.FileOutputStream. path)]
    (let [w (fress/create-writer os)]
      (writer-fn w)
      (.flush ^java.io.OutputStream os))))

(defn read-all
  "Every top-level value in the file, checking footers' checksums."
  [^String path]
  (with-open [is (java.io.BufferedInputStream. (java.io.FileInputStream. path))]
    (let [r (fress/create-reader is :checksum? true)]
      (loop [acc []]
        (let [v (try (fress/read-object r) (catch java.io.EOFException _ ::eof))]
          (if (= v ::eof) acc (recur (conj acc v))))))))

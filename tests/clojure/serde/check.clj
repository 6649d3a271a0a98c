;; The serde round trip against the reference (tests/tests/serde_reference.rs).
;;
;; Usage: clojure -cp <data.fressian.jar>:<fressian.jar> check.clj DIR
;;
;; For each case below: reads DIR/<name>.fress (written by Rust's
;; datacamp_codec::to_vec from the Rust value of the same name) with
;; clojure.data.fressian/read and compares it with the expected Clojure
;; value, printing "OK <name>" or "FAIL <name>: …"; then writes the expected
;; value with clojure.data.fressian/write to DIR/<name>.ref.fress, which the
;; Rust side deserializes into its type and compares with its value.
;; Prints "DONE <n>" at the end.
(require '[clojure.data.fressian :as fress])
(import '(org.fressian TaggedObject)
        '(java.util Date UUID)
        '(java.net URI))

(defn normalize
  "A form that compares with = the way the round trip means equality:
  arrays by content, floats by type and bits, numbers by type and text."
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
    (.isArray (class x)) [:array (.getName (.getComponentType (class x))) (mapv normalize x)]
    (instance? java.util.Map x) [:map (into {} (map (fn [[k v]] [(normalize k) (normalize v)]) x))]
    (instance? java.util.Set x) [:set (set (map normalize x))]
    (instance? java.util.List x) [:list (mapv normalize x)]
    :else x))

(def uuid (UUID/fromString "01234567-89ab-cdef-0123-456789abcdef"))

(def cases
  [["person"
    {:person/name "Ada" :age 36 :address {:street "1 Loop Rd" :zip nil}
     :shapes [:Empty {:Circle 1.5} {:Rect [2 -3]} {:Poly {:points [[0 1] [-1 2]]}}]
     :nick "countess"}]
   ["person-string-keys"
    {"person/name" "Bob" "age" 7 "address" {"street" "Main" "zip" 12345}
     "shapes" ["Empty" {"Circle" -0.5}]
     "nick" nil}]
   ["extensions"
    {:kw :db/id :sym 'inc :at (Date. 1700000000123) :id uuid
     :big 123456789012345678901234567890N :dec 1.50M :neg_scale 1.5E+2M
     :set #{1 2 3} :rec (TaggedObject. "my/point" (object-array ["p" 9]))
     :status :status/active :func 'clojure.core/inc :when (Date. 42)
     :plain_id uuid :plain_big -5N :plain_set #{"a" "b"} :by_kw {:k 1 :ns/j 2}}]
   ["scalars"
    [true -7 (float 1.5) 2.5 \x "a😀é" (byte-array [1 2 3 -1]) nil 18446744073709551615N
     Long/MIN_VALUE 255]]
   ["values"
    [(URI. "http://x/") #"a+b" 1/3 (int-array [1 -2]) (long-array [5]) (double-array [2.5])
     (float-array [0.5]) (boolean-array [true false]) (object-array ["o" :p]) #{:s 'y}
     {[1 2] "vector key" nil "nil key"}]]
   ["keyword-map"
    {:a/b [1 2] :c [] :d.e/f [-1]}]])

(let [[dir] *command-line-args*
      checked (atom 0)]
  (doseq [[name expected] cases]
    (let [f (java.io.File. (str dir "/" name ".fress"))]
      (if-not (.exists f)
        (println "MISSING" name)
        (let [result (try (fress/read (java.io.ByteArrayInputStream. (java.nio.file.Files/readAllBytes (.toPath f))))
                          (catch Throwable t t))]
          (swap! checked inc)
          (cond
            (instance? Throwable result)
            (println "FAIL" (str name ":") "reading threw" (str result))
            (= (normalize expected) (normalize result))
            (println "OK" name)
            :else
            (println "FAIL" (str name ":") "expected" (pr-str (normalize expected))
                     "got" (pr-str (normalize result)))))))
    (let [buf (fress/write expected)
          bytes (byte-array (.remaining buf))]
      (.get buf bytes)
      (java.nio.file.Files/write (.toPath (java.io.File. (str dir "/" name ".ref.fress")))
                                 bytes
                                 (make-array java.nio.file.OpenOption 0))))
  (println "DONE" @checked))

;; The deterministic synthetic dataset of datacamp_datom::synthetic, in
;; Clojure, datom for datom (see crates/datom/src/synthetic.rs for the
;; formula). Loaded by reference_pipeline.clj.
(ns datacamp.synthetic)

(def ^:const tx0 536870912)
(def ^:const first-entity 1000)
(def ^:const entities-per-tx 1000)

(defn splitmix64 ^long [^long x]
  (let [z (unchecked-add x -7046029254386353131)
        z (unchecked-multiply (bit-xor z (unsigned-bit-shift-right z 30)) -4658895280553007687)
        z (unchecked-multiply (bit-xor z (unsigned-bit-shift-right z 27)) -7723592293110705685)]
    (bit-xor z (unsigned-bit-shift-right z 31))))

(defn- urem ^long [^long a ^long m] (Long/remainderUnsigned a m))

(def first-names ["Ada" "Grace" "Alan" "Edsger" "Barbara" "Donald" "Frances" "John" "Margaret" "Ken"
                  "Radia" "Dennis" "Leslie" "Niklaus" "Hedy" "Tim"])
(def last-names ["Lovelace" "Hopper" "Turing" "Dijkstra" "Liskov" "Knuth" "Allen" "McCarthy" "Hamilton"
                 "Thompson" "Perlman" "Ritchie" "Lamport" "Wirth" "Lamarr" "Berners-Lee"])
(def statuses [:status/active :status/inactive :status/pending :status/suspended])
(def tags (mapv #(keyword "tag" (str "t" %)) (range 50)))

;; [ident value-type many? unique index doc]
(def schema
  [[:person/id "uuid" false "identity" false "External id"]
   [:person/name "string" false nil true "Full name"]
   [:person/email "string" false nil false "Contact address"]
   [:person/age "long" false nil false "Age in years"]
   [:person/score "double" false nil false "Engagement score, 0-100"]
   [:person/joined "instant" false nil false "When the person signed up"]
   [:person/status "keyword" false nil false "Account status"]
   [:person/active "boolean" false nil false "Active in the last 30 days"]
   [:person/friend "ref" true nil false "Friends (other people)"]
   [:person/tag "keyword" true nil false "Interest tags"]])

(defn- tx-instant-datom [^long tx]
  [tx :db/txInstant (java.util.Date. (+ 1700000000000 (* (- tx tx0) 1000))) tx true])

(defn schema-datoms []
  (let [tx (inc tx0)]
    (conj
     (vec (mapcat (fn [i [ident ty many unique index doc]]
                    (let [e (inc i)]
                      (cond-> [[e :db/ident ident tx true]
                               [e :db/valueType (keyword "db.type" ty) tx true]
                               [e :db/cardinality (keyword "db.cardinality" (if many "many" "one")) tx true]
                               [e :db/doc doc tx true]]
                        unique (conj [e :db/unique (keyword "db.unique" unique) tx true])
                        index (conj [e :db/index true tx true]))))
                  (range) schema))
     (tx-instant-datom tx))))

(def attrs (mapv first schema))

(defn entity-value [^long k ^long j]
  (let [h (fn ^long [^long i] (splitmix64 (unchecked-add (unchecked-multiply k 16) i)))]
    (case j
      0 (java.util.UUID. (h 0) (h 1))
      1 (let [x (h 2)]
          (str (first-names (urem x 16)) " " (last-names (urem (unsigned-bit-shift-right x 8) 16))))
      2 (str "user" k "@example.com")
      3 (+ 18 (urem (h 3) 80))
      4 (* (/ (double (unsigned-bit-shift-right (h 4) 11)) 9007199254740992.0) 100.0)
      5 (java.util.Date. (+ 1577836800000 (urem (h 5) 157680000000)))
      6 (statuses (urem (h 6) 4))
      7 (= 1 (urem (h 7) 2))
      8 (+ first-entity (urem (h 8) (inc k)))
      9 (tags (urem (h 9) 50)))))

(defn- entity-tx ^long [^long k] (+ tx0 2 (quot k entities-per-tx)))

(defn datoms
  "Exactly n datoms, in the order of datacamp_datom::synthetic::datoms: the
  last one is always the :db/txInstant of its transaction (the datom that
  would have been n-th is replaced by it)."
  [n]
  (map-indexed
   (fn [i d] (if (= i (dec n)) (tx-instant-datom (nth d 3)) d))
   (take n
        (concat
         (schema-datoms)
         (mapcat (fn [k]
                   (let [tx (entity-tx k)
                         ds (mapv (fn [j] [(+ first-entity k) (attrs j) (entity-value k j) tx true]) (range 10))]
                     (if (zero? (mod (inc k) entities-per-tx))
                       (conj ds (tx-instant-datom tx))
                       ds)))
                 (range))))))
